import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import type { RunResult } from './support/run.js';
import { rememberSecret } from './support/secrets.js';

async function ok(p: Promise<RunResult>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

async function fails(p: Promise<RunResult>, what: string): Promise<string> {
  const r = await p;
  assert.notEqual(r.code, 0, `${what} succeeded:\n${r.stdout}`);
  return r.stderr;
}

/**
 * Issue 23 on the real systems: a private registry (Debian docker-registry, htpasswd), the real dockerd 20.10 and the
 * docker 28 CLI, through gateway processes of their own (the registry is on loopback, so docker.allowedRegistries
 * must name it). The private image is not in the engine's cache when the env is up; this spec pulls it and removes it.
 */
describe('docker images through the gateway: a private image runs only for the project that pulled it (real registry, dockerd, CLI)', function () {
  const tag = randomBytes(3).toString('hex');
  let gateway: GatewayProcess;
  let alice: DockerUser;
  let bob: DockerUser;
  let tokens: { alice: string; bob: string };
  const registry = (): ReturnType<typeof e2eEnv>['registry'] => e2eEnv().registry;
  const IMAGE = (): string => registry().privateImage;
  const SHARED = (): string => e2eEnv().busyboxImage;
  const start = (): Promise<GatewayProcess> => startGateway({ cacheTtlSeconds: 300, docker: [`allowedRegistries: [${JSON.stringify(registry().address)}]`] });
  const users = (g: GatewayProcess): void => {
    alice = new DockerUser(g.port, { 'X-Auth-Token': tokens.alice });
    bob = new DockerUser(g.port, { 'X-Auth-Token': tokens.bob });
  };
  let imageId = '';

  before(async function () {
    this.timeout(60_000);
    rememberSecret(registry().password);
    tokens = { alice: (await issueToken('alice', 'alpha')).token, bob: (await issueToken('bob', 'beta')).token };
    gateway = await start();
    users(gateway);
  });

  after(async function () {
    this.timeout(60_000);
    await gateway?.stop();
    // The env's promise: the private image is not in the engine's cache. The gateway's records of this spec's pulls go too.
    await engineDocker(['rm', '-f', ...['img-a', 'img-b', 'img-b2', 'img-b3'].map((n) => `${n}-${tag}`)]);
    if (imageId !== '') {
      const records = await engineDocker(['volume', 'ls', '-q', '--filter', `label=org.openstack.zun-gateway.pulled.image-id=${imageId}`]);
      const names = records.stdout.split('\n').filter((n) => n !== '');
      if (names.length > 0) await engineDocker(['volume', 'rm', ...names]);
    }
    await engineDocker(['rmi', IMAGE()]);
  });

  it('alice logs in to the registry through the gateway and pulls the private image with her credentials, then runs it', async function () {
    this.timeout(120_000);
    const login = await ok(alice.docker(['login', '-u', registry().user, '--password-stdin', registry().address], { input: registry().password }), 'docker login');
    assert.match(login, /Login Succeeded/);
    await ok(alice.docker(['pull', IMAGE()]), 'alice: docker pull');
    imageId = (await ok(engineDocker(['image', 'inspect', '--format', '{{.Id}}', IMAGE()]), 'engine inspect')).trim();
    const out = await ok(alice.docker(['run', '--rm', IMAGE(), 'cat', '/secret.txt']), 'alice: docker run');
    assert.equal(out.trim(), registry().privateImageMarker);
    const listed = await ok(alice.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']), 'alice: docker images');
    assert.ok(listed.split('\n').includes(IMAGE()), listed);
    await ok(alice.docker(['image', 'inspect', IMAGE()]), 'alice: image inspect');
  });

  it('bob cannot run, create, inspect or list it, and his pull without credentials is refused by the registry', async function () {
    this.timeout(120_000);
    const ran = await fails(bob.docker(['run', '--rm', IMAGE(), 'cat', '/secret.txt']), 'bob: docker run');
    // The CLI took the gateway's answer for a missing image and pulled, without credentials: the registry said no.
    assert.match(ran, /Unable to find image .* locally/);
    assert.match(ran, /no basic auth credentials|unauthorized|denied/i);
    assert.match(await fails(bob.docker(['create', '--pull=never', '--name', `img-b-${tag}`, IMAGE()]), 'bob: docker create'), /No such image: 127\.0\.0\.1:\d+\/secret\/app:1/);
    assert.match(await fails(bob.docker(['image', 'inspect', IMAGE()]), 'bob: image inspect'), /No such image/);
    assert.match(await fails(bob.docker(['image', 'inspect', imageId]), 'bob: image inspect by id'), /No such image/);
    const listed = await ok(bob.docker(['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}']), 'bob: docker images');
    assert.ok(!listed.includes(imageId) && !listed.includes(registry().address), listed);
    assert.match(await fails(bob.docker(['pull', IMAGE()]), 'bob: docker pull'), /no basic auth credentials|unauthorized|denied/i);
    const info = await ok(bob.docker(['info', '--format', '{{.Images}}']), 'bob: docker info');
    assert.equal(Number(info.trim()), listed.split('\n').filter((l) => l !== '').length);
  });

  it('a pull by digest is no proof (the engine has the image and asks no registry): bob is told to pull by tag, and still cannot run it', async function () {
    this.timeout(120_000);
    const digest = (await ok(engineDocker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', IMAGE()]), 'engine inspect')).trim();
    assert.match(digest, /@sha256:[0-9a-f]{64}$/);
    const pulled = await fails(bob.docker(['pull', digest]), 'bob: docker pull by digest');
    assert.match(pulled, /a pull by digest does not show that project beta may pull it/);
    assert.match(await fails(bob.docker(['create', '--pull=never', '--name', `img-b3-${tag}`, digest]), 'bob: create by digest'), /No such image/);
  });

  it('the shared image (docker.sharedImages) runs for both projects without a pull', async function () {
    this.timeout(60_000);
    for (const [who, user] of [['alice', alice], ['bob', bob]] as const) {
      assert.equal((await ok(user.docker(['run', '--rm', '--pull=never', SHARED(), 'echo', `shared-${who}`]), `${who}: run shared`)).trim(), `shared-${who}`);
    }
  });

  it("a gateway restarted (a new process) still knows alice's image, and still not bob's", async function () {
    this.timeout(120_000);
    await gateway.stop();
    gateway = await start();
    users(gateway);
    await ok(alice.docker(['create', '--pull=never', '--name', `img-a-${tag}`, IMAGE()]), 'alice: create after the restart, no pull');
    assert.match(await fails(bob.docker(['create', '--pull=never', '--name', `img-b2-${tag}`, IMAGE()]), 'bob: create after the restart'), /No such image/);
  });
});
