import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { sharedGateway, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import { run, type RunResult } from './support/run.js';

/**
 * The Python Docker clients tenants already use, as Debian ships them (invariants.md 35): docker-compose 1.29 and
 * docker-py (python3-docker), both under the system interpreter, set up as their own docs say (DOCKER_HOST,
 * DOCKER_TLS_VERIFY, DOCKER_CERT_PATH with ca.pem, cert.pem and key.pem; the token in ~/.docker/config.json
 * HttpHeaders). A missing client fails the run: test/e2e/env/up installs them.
 */

const COMPOSE = '/usr/bin/docker-compose';
const PYTHON = '/usr/bin/python3';
const IMAGE = (): string => e2eEnv().busyboxImage;

async function ok(p: Promise<RunResult>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** A certificate and key that no CA the gateway knows signed: docker-py wants one beside the CA even without mutual TLS. */
async function selfSignedPair(dir: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'self.crt');
  const key = path.join(dir, 'self.key');
  await ok(run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=unused-client', '-keyout', key, '-out', cert]), 'openssl req');
  return { cert, key };
}

/**
 * The environment the Python clients are given, built from nothing: REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which this
 * machine exports, would replace docker-py's own CA.
 */
function clientEnv(port: number, token: string, client: { cert: string; key: string }): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-py-'));
  const certs = path.join(dir, 'certs');
  const config = path.join(dir, 'config');
  mkdirSync(certs);
  mkdirSync(config);
  copyFileSync(e2eEnv().tlsCa, path.join(certs, 'ca.pem'));
  copyFileSync(client.cert, path.join(certs, 'cert.pem'));
  copyFileSync(client.key, path.join(certs, 'key.pem'));
  writeFileSync(path.join(config, 'config.json'), JSON.stringify({ HttpHeaders: { 'X-Auth-Token': token } }), { mode: 0o600 });
  return {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    DOCKER_HOST: `tcp://127.0.0.1:${port}/docker`,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: certs,
    DOCKER_CONFIG: config,
  };
}

/** docker-py's everyday calls; prints one JSON line of what it saw. */
const DOCKER_PY_SCRIPT = `
import json, sys
import docker
name, image = sys.argv[1], sys.argv[2]
client = docker.from_env()
seen = {"ping": client.ping()}
seen["run"] = client.containers.run(image, ["echo", "from-docker-py"], remove=True).decode().strip()
c = client.containers.run(image, ["sleep", "300"], name=name, detach=True)
try:
    code, out = c.exec_run(["sh", "-c", "echo exec-ok"])
    seen["exec"] = [code, out.decode().strip()]
    seen["listed"] = name in [x.name for x in client.containers.list()]
    net = client.networks.create(name + "-net", driver="bridge", attachable=True)
    seen["network"] = net.name
    net.remove()
finally:
    c.remove(force=True)
seen["removed"] = name not in [x.name for x in client.containers.list(all=True)]
print(json.dumps(seen))
`;

describe('docker-compose v1 and docker-py (Debian) through the gateway (real dockerd, Keystone, TLS)', function () {
  const tag = randomBytes(3).toString('hex');
  const project = `zgwc${tag}`;
  let work: string;
  let selfSigned: { cert: string; key: string };
  let token: string;

  before(async function () {
    this.timeout(60_000);
    for (const [file, pkg] of [[COMPOSE, 'docker-compose'], [PYTHON, 'python3']] as const) {
      if (!existsSync(file)) throw new Error(`${file} is missing: install Debian's ${pkg} (test/e2e/env/up does)`);
    }
    const probe = await run(PYTHON, ['-c', 'import docker; print(docker.__version__)']);
    if (probe.code !== 0) throw new Error(`docker-py is missing under ${PYTHON}: install Debian's python3-docker (test/e2e/env/up does)\n${probe.stderr}`);
    work = mkdtempSync(path.join(os.tmpdir(), 'zgw-compose-'));
    selfSigned = await selfSignedPair(work);
    token = (await issueToken('alice', 'alpha')).token;
  });

  after(async function () {
    this.timeout(60_000);
    const left = await engineDocker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
    const ids = left.stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) await engineDocker(['rm', '-f', ...ids]);
    await engineDocker(['network', 'rm', `${project}_default`, `${project}p_default`]);
    await engineDocker(['volume', 'rm', '-f', `${project}_data`]);
    await engineDocker(['rm', '-f', `py-${tag}`, `py-mtls-${tag}`]);
    await engineDocker(['network', 'rm', `py-${tag}-net`, `py-mtls-${tag}-net`]);
  });

  it('docker-compose up -d, ps, logs, exec -T and down -v: two services, a named volume, service names resolving between them', async function () {
    this.timeout(240_000);
    const env = clientEnv(sharedGateway().port, token, selfSigned);
    writeFileSync(
      path.join(work, 'docker-compose.yml'),
      [
        'version: "3.7"',
        'services:',
        '  web:',
        `    image: ${IMAGE()}`,
        '    command: ["sh", "-c", "echo web-up; echo stored > /data/f; exec sleep 600"]',
        '    volumes: ["data:/data"]',
        '  client:',
        `    image: ${IMAGE()}`,
        '    command: ["sleep", "600"]',
        '    depends_on: [web]',
        'volumes:',
        '  data: {}',
        '',
      ].join('\n'),
    );
    const compose = (args: string[]): Promise<RunResult> => run(COMPOSE, ['-p', project, ...args], { env, cwd: work, timeoutMs: 120_000 });

    await ok(compose(['up', '-d']), 'docker-compose up -d');
    const ps = await ok(compose(['ps']), 'docker-compose ps');
    for (const service of ['web', 'client']) assert.match(ps, new RegExp(`${project}_${service}_1 .* Up`), ps);
    assert.match(await ok(compose(['logs', 'web']), 'docker-compose logs'), /web-up/);
    // compose's exec runs the docker CLI with the same environment.
    assert.match(await ok(compose(['exec', '-T', 'client', 'ping', '-c1', '-W2', 'web']), 'docker-compose exec -T (name resolution)'), /1 packets received/);
    assert.equal((await ok(compose(['exec', '-T', 'web', 'cat', '/data/f']), 'docker-compose exec -T (volume)')).trim(), 'stored');

    // What compose made is alice's project's, and bob's docker sees none of it.
    const { projectId } = await issueToken('alice', 'alpha');
    const owner = await ok(engineDocker(['volume', 'inspect', '-f', '{{index .Labels "org.openstack.zun-gateway.project-id"}}', `${project}_data`]), 'volume inspect');
    assert.equal(owner.trim(), projectId);
    const bob = new DockerUser(sharedGateway().port, { 'X-Auth-Token': (await issueToken('bob', 'beta')).token });
    const bobSees = (await ok(bob.docker(['ps', '-a', '--format', '{{.Names}}']), 'bob ps')) + (await ok(bob.docker(['volume', 'ls', '-q']), 'bob volume ls')) + (await ok(bob.docker(['network', 'ls', '--format', '{{.Name}}']), 'bob network ls'));
    assert.doesNotMatch(bobSees, new RegExp(project));

    await ok(compose(['down', '-v']), 'docker-compose down -v');
    assert.equal((await engineDocker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout.trim(), '');
    assert.notEqual((await engineDocker(['volume', 'inspect', `${project}_data`])).code, 0, 'the named volume is left');
    assert.notEqual((await engineDocker(['network', 'inspect', `${project}_default`])).code, 0, 'the network is left');
  });

  it("a compose file with an isolation-changing option is refused naming the compose key, and a network's Attachable still passes", async function () {
    this.timeout(120_000);
    const env = clientEnv(sharedGateway().port, token, selfSigned);
    const dir = mkdtempSync(path.join(work, 'priv-'));
    writeFileSync(path.join(dir, 'docker-compose.yml'), ['version: "3.7"', 'services:', '  app:', `    image: ${IMAGE()}`, '    privileged: true', '    command: ["true"]', ''].join('\n'));
    const up = await run(COMPOSE, ['-p', `${project}p`, 'up', '-d'], { env, cwd: dir, timeoutMs: 120_000 });
    try {
      assert.notEqual(up.code, 0);
      assert.match(up.stderr, /HostConfig\.Privileged \(--privileged; in compose: privileged\) is not allowed through the gateway/);
      assert.match(up.stderr, /Creating network "zgwc[0-9a-f]+p_default"/, 'the network (Attachable: true) was not made');
    } finally {
      await run(COMPOSE, ['-p', `${project}p`, 'down', '-v'], { env, cwd: dir, timeoutMs: 120_000 });
    }
  });

  it('docker-py with a client certificate beside the CA, gateway without mutual TLS: any certificate will do (the gateway asks for none)', async function () {
    this.timeout(120_000);
    const env = clientEnv(sharedGateway().port, token, selfSigned);
    const out = await ok(run(PYTHON, ['-c', DOCKER_PY_SCRIPT, `py-${tag}`, IMAGE()], { env, timeoutMs: 90_000 }), 'docker-py');
    assert.deepEqual(JSON.parse(out), { ping: true, run: 'from-docker-py', exec: [0, 'exec-ok'], listed: true, network: `py-${tag}-net`, removed: true });
  });

  describe('with mutual TLS on (listen.tls.clientCaFile)', () => {
    let gateway: GatewayProcess;

    before(async function () {
      this.timeout(60_000);
      gateway = await startGateway({ cacheTtlSeconds: 60, clientCaFile: e2eEnv().tlsCa });
    });

    after(async function () {
      this.timeout(30_000);
      await gateway.stop();
    });

    it('docker-py with a certificate the client CA signed works', async function () {
      this.timeout(120_000);
      const { clientCert, clientKey } = e2eEnv().dockerTls;
      const env = clientEnv(gateway.port, token, { cert: clientCert, key: clientKey });
      const out = await ok(run(PYTHON, ['-c', DOCKER_PY_SCRIPT, `py-mtls-${tag}`, IMAGE()], { env, timeoutMs: 90_000 }), 'docker-py with mutual TLS');
      assert.equal(JSON.parse(out).exec[1], 'exec-ok');
    });

    it('docker-py with a certificate the client CA did not sign is refused, saying so', async function () {
      this.timeout(60_000);
      const env = clientEnv(gateway.port, token, selfSigned);
      const res = await run(PYTHON, ['-c', 'import docker; docker.from_env().containers.list()'], { env, timeoutMs: 30_000 });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /401 Client Error.*the client certificate is not accepted \(it is self-signed, not signed by the configured client CA\)/);
    });
  });
});
