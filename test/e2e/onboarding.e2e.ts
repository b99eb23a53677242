import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { freePort } from './support/gateway-process.js';
import {
  applicationCredentialToken,
  applicationCredentialsNamed,
  createUserWithProject,
  deleteApplicationCredential,
  deleteProject,
  deleteServicesOfType,
  deleteUser,
  servicesOfType,
} from './support/keystone-admin.js';
import { run, type RunResult } from './support/run.js';
import { rememberSecret } from './support/secrets.js';

/** GET trusting exactly `ca` (or nothing but the system's roots): the status and body, or the TLS error's code. */
function get(url: string, ca: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | string> {
  return new Promise((resolve) => {
    https
      .get(url, { headers, timeout: 10_000, ...(ca !== undefined ? { ca: readFileSync(ca) } : {}) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function must(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

const cloudsYaml = (cloud: string, user: string, password: string, project: string): string =>
  [
    'clouds:',
    `  ${cloud}:`,
    '    auth:',
    `      auth_url: ${e2eEnv().keystoneUrl}`,
    `      username: ${user}`,
    `      password: ${JSON.stringify(password)}`,
    `      project_name: ${project}`,
    '      user_domain_name: Default',
    '      project_domain_name: Default',
    '',
  ].join('\n');

/** Every regular file under dir. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(full) : e.isFile() ? [full] : [];
  });
}

/**
 * The README's quick start on the real systems: a fresh clone, `npm ci && npm start` with nothing but a clouds.yaml
 * (OS_CLOUD), KUBECONFIG and DOCKER_HOST (HOME a temporary folder), then the operator's `register` and a new tenant's
 * `kubeconfig` and `docker-config` without --server, driven by the real kubectl and docker CLI. One gateway for all.
 */
describe('onboarding: a fresh clone started with no configuration, the Keystone catalog, kubeconfig and docker-config', function () {
  this.timeout(120_000);
  const env = e2eEnv();
  const suffix = randomBytes(4).toString('hex');
  // A service type of this run's own: the catalog is shared with other runs on this Keystone.
  const serviceType = `zgw-e2e-${suffix}`;
  const tenantName = `onb-${suffix}`;
  const tenantPassword = `onb-pw-${randomBytes(8).toString('hex')}`;
  let root: string;
  let clone: string;
  let main: string;
  let gatewayHome: string;
  let tenantHome: string;
  let npm: ChildProcess | undefined;
  let gatewayOut = '';
  let summary = '';
  let url: string;
  let ca: string;
  let tenant: { userId: string; projectId: string } | undefined;
  let dockerEnv: Record<string, string>;

  /** zun-gateway of the clone, as the tenant: their clouds.yaml, their HOME. */
  const asTenant = (args: readonly string[]): Promise<RunResult> =>
    run(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? '', HOME: tenantHome, OS_CLOUD: 'mine' }, timeoutMs: 60_000 });

  before(async function () {
    // git clone, npm ci and the build `npm start` runs first: minutes on a busy 2-core machine.
    this.timeout(600_000);
    root = mkdtempSync(path.join(os.tmpdir(), 'zgw-onboard-'));
    clone = path.join(root, 'clone');
    main = path.join(clone, 'dist', 'src', 'main.js');
    must(await run('git', ['clone', '--quiet', process.cwd(), clone], { timeoutMs: 120_000 }), 'git clone');
    must(await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, env: process.env, timeoutMs: 400_000 }), 'npm ci');

    gatewayHome = path.join(root, 'gateway-home');
    mkdirSync(path.join(gatewayHome, '.config', 'openstack'), { recursive: true });
    writeFileSync(path.join(gatewayHome, '.config', 'openstack', 'clouds.yaml'), cloudsYaml('gateway', 'gateway', env.passwords.gateway, 'service'), { mode: 0o600 });
    const port = await freePort();
    const log = createWriteStream(path.join(env.logDir, 'onboarding-gateway.log'), { flags: 'a' });
    npm = spawn('npm', ['start', '--silent'], {
      cwd: clone,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: gatewayHome,
        OS_CLOUD: 'gateway',
        KUBECONFIG: env.gatewayKubeconfig,
        DOCKER_HOST: `unix://${env.dockerSocket}`,
        ZUN_GATEWAY_PORT: String(port),
        ZUN_GATEWAY_SERVICE_TYPE: serviceType,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: npm, the build and the gateway are all stopped at the end.
      detached: true,
    });
    npm.stdout?.on('data', (d: Buffer) => {
      gatewayOut += d.toString('utf8');
      log.write(d);
    });
    summary = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`no start summary within 5 minutes:\n${err}`)), 300_000);
      npm?.stderr?.on('data', (d: Buffer) => {
        err += d.toString('utf8');
        log.write(d);
        if (/^This configuration as a file to edit: .*\n/m.test(err)) {
          clearTimeout(timer);
          resolve(err);
        }
      });
      npm?.once('exit', (code) => reject(new Error(`npm start exited (${code}) before serving:\n${err}`)));
    });
    url = /^ {2}listening {2}(https:\/\/127\.0\.0\.1:\d+) /m.exec(summary)?.[1] ?? '';
    ca = /^ {2}CA {9}(\S+) /m.exec(summary)?.[1] ?? '';

    tenant = await createUserWithProject(tenantName, tenantPassword);
    tenantHome = path.join(root, 'tenant-home');
    mkdirSync(path.join(tenantHome, '.config', 'openstack'), { recursive: true });
    writeFileSync(path.join(tenantHome, '.config', 'openstack', 'clouds.yaml'), cloudsYaml('mine', tenantName, tenantPassword, tenantName), { mode: 0o600 });
  });

  after(async function () {
    this.timeout(120_000);
    if (npm?.pid !== undefined && npm.exitCode === null) {
      const exited = new Promise((resolve) => npm?.once('exit', resolve));
      process.kill(-npm.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      try {
        process.kill(-npm.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await deleteServicesOfType(serviceType).catch(() => undefined);
    if (tenant !== undefined) {
      for (const c of await applicationCredentialsNamed(tenant.userId, credentialName()).catch(() => [])) {
        await deleteApplicationCredential(tenant.userId, c.id).catch(() => undefined);
      }
      await run(env.kubectl, ['--kubeconfig', env.adminKubeconfig, 'delete', 'namespace', `os-${tenantName}`, '--wait=false', '--ignore-not-found'], { env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir() } });
      await engineDocker(['network', 'rm', `zun-${tenant.projectId}`]);
      await deleteProject(tenant.projectId).catch(() => undefined);
      await deleteUser(tenant.userId).catch(() => undefined);
    }
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const credentialName = (): string => `zun-gateway docker-config ${new URL(url).host} ${tenant?.projectId ?? ''}`;

  it('serves /readyz, /k8s and /docker over HTTPS that the CA it printed verifies, and says what it found', async () => {
    assert.match(summary, /^ {2}Keystone {3}http:\/\/127\.0\.0\.1:5000\/v3 as user gateway, from OS_CLOUD=gateway \(/m);
    assert.ok(summary.includes(`  /k8s       the current context of ${env.gatewayKubeconfig}, from KUBECONFIG`), summary);
    assert.ok(summary.includes(`  /docker    unix://${env.dockerSocket}, from DOCKER_HOST`), summary);
    assert.doesNotMatch(summary, /not found/);
    assert.equal(ca, path.join(gatewayHome, '.local', 'state', 'zun-gateway', 'ca.pem'));
    const ready = await get(`${url}/readyz`, ca);
    assert.ok(typeof ready !== 'string', ready as string);
    assert.equal(ready.status, 200, ready.body);
    const checks = (JSON.parse(ready.body) as { checks: Record<string, { ok: boolean }> }).checks;
    assert.deepEqual(Object.fromEntries(Object.entries(checks).map(([k, v]) => [k, v.ok])), { keystone: true, k8s: true, docker: true });
    assert.equal(await get(`${url}/readyz`, undefined), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'only the printed CA verifies it');
    // Both mounts answer (asking for a token), in their own dialects.
    const k8s = await get(`${url}/k8s/api`, ca);
    assert.ok(typeof k8s !== 'string' && k8s.status === 401 && JSON.parse(k8s.body).kind === 'Status', JSON.stringify(k8s));
    const docker = await get(`${url}/docker/v1.41/containers/json`, ca);
    assert.ok(typeof docker !== 'string' && docker.status === 401 && /^no token/.test(JSON.parse(docker.body).message), JSON.stringify(docker));
  });

  it('register twice (admin credentials, the real Keystone): one service of its type, one public endpoint with the URL', async () => {
    const admin = {
      PATH: process.env.PATH ?? '',
      HOME: path.join(root, 'admin-home'),
      OS_AUTH_URL: env.keystoneUrl,
      OS_USERNAME: 'admin',
      OS_PASSWORD: env.passwords.admin,
      OS_PROJECT_NAME: 'admin',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
    for (let i = 0; i < 2; i += 1) must(await run(process.execPath, [main, 'register', '--url', url, '--type', serviceType], { env: admin, timeoutMs: 60_000 }), 'register');
    const services = await servicesOfType(serviceType);
    assert.equal(services.length, 1, JSON.stringify(services));
    assert.deepEqual(
      services[0]?.endpoints.filter((e) => e.interface === 'public').map((e) => e.url),
      [url],
    );
  });

  it('kubeconfig without --server finds the gateway in the catalog, and the real kubectl works with it', async () => {
    const file = path.join(tenantHome, '.kube', 'zun-gateway');
    must(await asTenant(['kubeconfig', '--service-type', serviceType, '--certificate-authority', ca, '--output', file]), 'kubeconfig');
    const text = readFileSync(file, 'utf8');
    assert.ok(text.includes(`server: ${url}/k8s`), text);
    assert.ok(text.includes(`namespace: os-${tenantName}`), text);
    const kenv = { PATH: process.env.PATH ?? '', HOME: tenantHome, OS_CLOUD: 'mine', KUBECONFIG: file };
    const pods = must(await run(env.kubectl, ['get', 'pods'], { env: kenv, timeoutMs: 60_000 }), 'kubectl get pods');
    assert.match(pods.stdout + pods.stderr, new RegExp(`No resources found in os-${tenantName} namespace`));
    must(await run(env.kubectl, ['create', 'configmap', 'onboarded', '--from-literal=ok=1'], { env: kenv, timeoutMs: 60_000 }), 'kubectl create configmap');
  });

  it('docker-config without --server: the real docker CLI and docker-py work with what it wrote; the credential is for /docker only', async () => {
    const dir = path.join(tenantHome, '.docker', 'zun-gateway');
    const r = must(await asTenant(['docker-config', '--service-type', serviceType, '--certificate-authority', ca, '--output', dir]), 'docker-config');
    const exports = /^export (.*)$/m.exec(r.stdout)?.[1] ?? '';
    dockerEnv = Object.fromEntries(exports.split(' ').map((kv) => kv.split('=', 2) as [string, string]));
    assert.deepEqual(dockerEnv, { DOCKER_HOST: `tcp://127.0.0.1:${new URL(url).port}/docker`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir, DOCKER_CONFIG: dir });
    const docker = (args: readonly string[]) => run('docker', args, { env: { PATH: process.env.PATH ?? '', HOME: tenantHome, ...dockerEnv }, timeoutMs: 60_000 });
    must(await docker(['volume', 'create', 'onboarded']), 'docker volume create');
    const volumes = must(await docker(['volume', 'ls', '--format', '{{.Name}}']), 'docker volume ls');
    assert.deepEqual(volumes.stdout.trim().split('\n'), ['onboarded']);
    // A gateway started with no configuration shares no image: the engine's busybox is not the project's (issue 23).
    const refused = await docker(['run', '--rm', env.busyboxImage, 'echo', 'onboarded']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`Unable to find image '${env.busyboxImage}(:latest)?' locally`));
    must(await docker(['volume', 'rm', 'onboarded']), 'docker volume rm');
    // docker-py (docker-compose's library) with the same exports: it insists on cert.pem and key.pem beside ca.pem.
    // Debian's interpreter, without the machine's REQUESTS_CA_BUNDLE (it would replace docker-py's own CA).
    const py = must(
      await run('/usr/bin/python3', ['-c', 'import docker; c = docker.from_env(); print(c.ping(), len(c.containers.list(all=True)))'], {
        env: { PATH: process.env.PATH ?? '', HOME: tenantHome, ...dockerEnv },
        timeoutMs: 60_000,
      }),
      'docker-py',
    );
    assert.equal(py.stdout.trim(), 'True 0', 'docker-py sees the project\'s containers only: none left');

    // In Keystone: one credential of that name, whose access rules are this gateway's /docker paths.
    const [credential, ...others] = await applicationCredentialsNamed(tenant?.userId ?? '', credentialName());
    assert.equal(others.length, 0);
    assert.deepEqual(
      (credential?.access_rules ?? []).map((a) => `${a.service} ${a.method} ${a.path}`).sort(),
      ['DELETE', 'GET', 'HEAD', 'POST', 'PUT'].map((m) => `${serviceType} ${m} /docker/**`),
    );
    // A token of that credential is refused outside them (here /k8s), by the gateway.
    const basic = (JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { HttpHeaders: { Authorization: string } }).HttpHeaders.Authorization;
    const [id, secret] = Buffer.from(basic.replace(/^Basic /, ''), 'base64').toString('utf8').split(':') as [string, string];
    rememberSecret(secret);
    const { token } = await applicationCredentialToken(id, secret);
    const k8s = await get(`${url}/k8s/api`, ca, { 'x-auth-token': token });
    assert.ok(typeof k8s !== 'string' && k8s.status === 403, JSON.stringify(k8s));
    assert.match(JSON.parse(k8s.body).message, /application credential with access rules/);
  });

  it('no file written holds a password: not the tenant\'s, not the gateway\'s (the clouds.yaml given excepted), nor the log', () => {
    const given = new Set([path.join(tenantHome, '.config', 'openstack', 'clouds.yaml'), path.join(gatewayHome, '.config', 'openstack', 'clouds.yaml')]);
    const written = [...filesUnder(tenantHome), ...filesUnder(gatewayHome)].filter((f) => !given.has(f));
    assert.ok(written.some((f) => f.endsWith(path.join('zun-gateway', 'config.json'))) && written.some((f) => f.endsWith('ca-key.pem')), written.join('\n'));
    for (const file of written) {
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(tenantPassword), `the tenant's password is in ${file}`);
      assert.ok(!text.includes(env.passwords.gateway), `the gateway's password is in ${file}`);
    }
    for (const secret of [tenantPassword, env.passwords.gateway, env.passwords.admin]) assert.ok(!gatewayOut.includes(secret), 'a password in the gateway log');
  });

  it('docker-config --revoke deletes the credential, and the docker CLI is refused from then on', async () => {
    const dir = path.join(tenantHome, '.docker', 'zun-gateway');
    must(await asTenant(['docker-config', '--service-type', serviceType, '--output', dir, '--revoke']), 'docker-config --revoke');
    assert.deepEqual(await applicationCredentialsNamed(tenant?.userId ?? '', credentialName()), []);
    const ps = await run('docker', ['ps'], { env: { PATH: process.env.PATH ?? '', HOME: tenantHome, ...dockerEnv }, timeoutMs: 60_000 });
    assert.notEqual(ps.code, 0);
    assert.match(ps.stderr, /no token/);
  });
});
