import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import { PULLED_IMAGE_LABEL, PULLED_PROJECT_LABEL, PULLED_REPOSITORY_LABEL } from '../../src/docker/image-pulls.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeDockerEngine, fakeDigest, fakeImageId } from '../helpers/fake-docker-engine.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { MemoryAudit } from '../helpers/memory-audit.js';

interface Answer {
  readonly status: number;
  readonly body: string;
}

function call(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What the docker CLI sends with a pull: the registry credentials of ~/.docker/config.json, base64url JSON. */
const registryAuth = (username: string): Record<string, string> => ({
  'x-registry-auth': Buffer.from(JSON.stringify({ username, password: 'pw', serveraddress: 'reg.example.com:5000' })).toString('base64url'),
});

const message = (a: Answer): string => (JSON.parse(a.body) as { message: string }).message;
/** The JSON lines of a pull's answer. */
const lines = (a: Answer): Array<Record<string, unknown>> => a.body.split('\r\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
const pullFailed = (a: Answer): boolean => lines(a).some((l) => l.error !== undefined);

describe('/docker images: a project uses only images it pulled or the operator shares (issue 23)', () => {
  let keystone: KeystoneDouble;
  let engine: FakeDockerEngine;
  const gateways: Gateway[] = [];
  let port: number;
  const alice = { 'x-auth-token': 'alice-token' };
  const bob = { 'x-auth-token': 'bob-token' };
  const PRIVATE = 'reg.example.com:5000/secret/app';
  const PRIVATE_ID = fakeImageId('secret');
  const PRIVATE_DIGEST = fakeDigest('secret');

  /** A gateway on the shared fake engine (several: replicas, or a restart). */
  const startGateway = async (): Promise<number> => {
    const config = parseConfig(
      [
        'listen: {host: 127.0.0.1, port: 0}',
        'keystone:',
        `  authUrl: ${keystone.url}`,
        '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
        `docker: {host: "unix://${engine.socketPath}", allowedRegistries: ["reg.example.com:5000"], sharedImages: [busybox]}`,
        'log: {level: silent}',
      ].join('\n'),
      {},
    );
    const gateway = await createGateway(config, { version: 'test', logger: silentLogger(), audit: new MemoryAudit() });
    gateways.push(gateway);
    return ((await gateway.listen()) as AddressInfo).port;
  };

  const pull = (p: number, who: Record<string, string>, query: string, extra: Record<string, string> = {}): Promise<Answer> =>
    call(p, 'POST', `/docker/v1.41/images/create?${query}`, { ...who, ...extra });
  const create = (p: number, who: Record<string, string>, image: string): Promise<Answer> =>
    call(p, 'POST', '/docker/v1.41/containers/create', who, JSON.stringify({ Image: image }));
  const listed = async (p: number, who: Record<string, string>): Promise<Array<{ Id: string; RepoTags: string[]; RepoDigests: string[] }>> =>
    JSON.parse((await call(p, 'GET', '/docker/v1.41/images/json', who)).body) as Array<{ Id: string; RepoTags: string[]; RepoDigests: string[] }>;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' } });
    keystone.register('bob-token', { user: 'bob', project: { id: 'p-beta', name: 'beta' } });
    engine = await new FakeDockerEngine().start();
    engine.registry.set(`${PRIVATE}:1`, { id: PRIVATE_ID, digest: PRIVATE_DIGEST, user: 'alice-at-registry' });
    engine.registry.set('reg.example.com:5000/public/tool:2', { id: fakeImageId('tool'), digest: fakeDigest('tool') });
    port = await startGateway();
  });

  after(async () => {
    for (const g of gateways) await g.shutdown();
    await engine.stop();
    await keystone.stop();
  });

  afterEach(() => {
    engine.pullErrorLine = undefined;
    engine.pullGate = undefined;
    engine.onPullStarted = undefined;
    engine.onPullTornDown = undefined;
    engine.onCreate = undefined;
    engine.failVolumeCreate = undefined;
  });

  it('an image nobody pulled (not shared) looks missing to everyone, exactly as the engine says it for a missing one', async () => {
    engine.images.push({ id: fakeImageId('stray'), repoTags: ['stray:latest'], repoDigests: [] });
    const made = await create(port, alice, 'stray');
    const missing = await create(port, alice, 'nothing-here');
    assert.equal(made.status, 404);
    assert.equal(message(made), 'No such image: stray:latest');
    assert.equal(message(missing), 'No such image: nothing-here:latest');
    const inspected = await call(port, 'GET', '/docker/v1.41/images/stray/json', alice);
    const inspectedMissing = await call(port, 'GET', '/docker/v1.41/images/nothing-here/json', alice);
    assert.equal(inspected.status, 404);
    assert.equal(inspected.body, inspectedMissing.body.replaceAll('nothing-here', 'stray'));
    assert.ok(!(await listed(port, alice)).some((i) => i.Id === fakeImageId('stray')));
    assert.ok(!engine.requests.some((r) => r.url.startsWith('/v1.41/containers/create') && r.body.includes('stray')), 'the create reached the engine');
  });

  it("alice pulls a private image with her registry credentials, streamed through as the engine wrote it; then it is hers: create, inspect, list", async () => {
    const pulled = await pull(port, alice, `fromImage=${encodeURIComponent(PRIVATE)}&tag=1`, registryAuth('alice-at-registry'));
    assert.equal(pulled.status, 200);
    assert.deepEqual(lines(pulled).at(-1), { status: `Status: Downloaded newer image for ${PRIVATE}:1` });
    assert.equal(pullFailed(pulled), false, pulled.body);
    assert.deepEqual([...engine.volumes.values()].filter((l) => l[PULLED_PROJECT_LABEL] === 'p-alpha'), [
      { [PULLED_PROJECT_LABEL]: 'p-alpha', [PULLED_REPOSITORY_LABEL]: PRIVATE, [PULLED_IMAGE_LABEL]: PRIVATE_ID },
    ]);
    assert.equal((await create(port, alice, `${PRIVATE}:1`)).status, 201);
    const inspected = await call(port, 'GET', `/docker/v1.41/images/${PRIVATE}:1/json`, alice);
    assert.equal(inspected.status, 200);
    assert.deepEqual((JSON.parse(inspected.body) as { RepoTags: string[] }).RepoTags, [`${PRIVATE}:1`]);
    assert.deepEqual((await listed(port, alice)).map((i) => i.Id).sort(), [fakeImageId('busybox'), PRIVATE_ID].sort());
  });

  it('bob cannot create, run, inspect or list it, and his pull without credentials is refused by the registry and records nothing', async () => {
    const made = await create(port, bob, `${PRIVATE}:1`);
    assert.equal(made.status, 404);
    assert.equal(message(made), `No such image: ${PRIVATE}:1`);
    for (const ref of [`${PRIVATE}:1`, PRIVATE_ID, `${PRIVATE}@${PRIVATE_DIGEST}`]) {
      assert.equal((await create(port, bob, ref)).status, 404, ref);
      const inspected = await call(port, 'GET', `/docker/v1.41/images/${ref}/json`, bob);
      assert.equal(inspected.status, 404, ref);
      assert.equal(message(inspected), `no such image: ${ref}: No such image: ${ref}`);
    }
    assert.deepEqual((await listed(port, bob)).map((i) => i.Id), [fakeImageId('busybox')]);
    const refused = await pull(port, bob, `fromImage=${encodeURIComponent(PRIVATE)}&tag=1`);
    assert.equal(refused.status, 500);
    assert.match(message(refused), /no basic auth credentials/);
    assert.equal((await create(port, bob, `${PRIVATE}:1`)).status, 404);
    const info = JSON.parse((await call(port, 'GET', '/docker/v1.41/info', bob)).body) as { Images: number };
    assert.equal(info.Images, 1, 'docker info counts the images bob may use');
  });

  it('a pull by digest of an image the engine has proves nothing (the engine does not ask the registry): bob is told to pull by tag', async () => {
    const pulled = await pull(port, bob, `fromImage=${encodeURIComponent(PRIVATE)}&tag=${PRIVATE_DIGEST}`);
    assert.equal(pulled.status, 200);
    const last = lines(pulled).at(-1) as { error?: string };
    assert.match(String(last.error), /a pull by digest does not show that project beta may pull it .* pull it once by tag \(docker pull reg\.example\.com:5000\/secret\/app:<tag>\)/);
    assert.equal((await create(port, bob, `${PRIVATE}@${PRIVATE_DIGEST}`)).status, 404);
    const own = await pull(port, alice, `fromImage=${encodeURIComponent(PRIVATE)}&tag=${PRIVATE_DIGEST}`);
    assert.equal(pullFailed(own), false, 'alice may use it already: her digest pull is fine');
  });

  it('the record is in the engine: another gateway (a replica, or a restart) knows alice pulled it', async () => {
    const other = await startGateway();
    assert.equal((await create(other, alice, `${PRIVATE}:1`)).status, 201);
    assert.equal((await create(other, bob, `${PRIVATE}:1`)).status, 404);
  });

  it('a public image pulled without credentials is the puller\'s, and only after the pull', async () => {
    const tool = 'reg.example.com:5000/public/tool:2';
    assert.equal((await create(port, bob, tool)).status, 404);
    assert.equal(pullFailed(await pull(port, bob, `fromImage=${encodeURIComponent('reg.example.com:5000/public/tool')}&tag=2`)), false);
    assert.equal((await create(port, bob, tool)).status, 201);
    assert.equal((await create(port, alice, tool)).status, 404, 'alice has not pulled it');
  });

  it('a pull that ends in an error line records nothing', async () => {
    engine.registry.set('reg.example.com:5000/public/broken:1', { id: fakeImageId('broken'), digest: fakeDigest('broken') });
    engine.images.push({ id: fakeImageId('broken'), repoTags: [], repoDigests: [] });
    engine.pullErrorLine = 'unexpected EOF';
    const pulled = await pull(port, alice, `fromImage=${encodeURIComponent('reg.example.com:5000/public/broken')}&tag=1`);
    assert.deepEqual(lines(pulled).at(-1), { errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' });
    assert.equal(lines(pulled).filter((l) => l.error !== undefined).length, 1, "the gateway adds nothing to the engine's error");
    assert.ok(![...engine.volumes.values()].some((l) => l[PULLED_IMAGE_LABEL] === fakeImageId('broken')));
  });

  it("a client that leaves mid-pull records nothing: the engine's pull is torn down", async () => {
    engine.registry.set('reg.example.com:5000/public/slow:1', { id: fakeImageId('slow'), digest: fakeDigest('slow') });
    let open!: () => void;
    engine.pullGate = new Promise<void>((r) => (open = r));
    const started = new Promise<void>((r) => (engine.onPullStarted = r));
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/docker/v1.41/images/create?fromImage=${encodeURIComponent('reg.example.com:5000/public/slow')}&tag=1`, headers: alice });
    req.on('error', () => undefined);
    req.end();
    await started;
    await new Promise<void>((r) => req.on('response', (res) => res.once('data', () => r())));
    const tornDown = new Promise<void>((r) => (engine.onPullTornDown = r));
    req.destroy();
    await tornDown;
    open();
    assert.equal((await create(port, alice, 'reg.example.com:5000/public/slow:1')).status, 404);
    assert.ok(![...engine.volumes.values()].some((l) => l[PULLED_IMAGE_LABEL] === fakeImageId('slow')));
  });

  it('when the record cannot be written, the pull ends with an error line saying so (the CLI fails rather than run into a miss)', async () => {
    engine.registry.set('reg.example.com:5000/public/norecord:1', { id: fakeImageId('norecord'), digest: fakeDigest('norecord') });
    engine.failVolumeCreate = 'no space left on device';
    const pulled = await pull(port, alice, `fromImage=${encodeURIComponent('reg.example.com:5000/public/norecord')}&tag=1`);
    assert.match(String(lines(pulled).at(-1)?.error), /the image was pulled, but the gateway could not record the pull .*pull it again/);
  });

  it('a tag moved by another pull between the check and the create: the container made from the other image is removed, the answer a miss', async () => {
    engine.registry.set('reg.example.com:5000/shared/app:1', { id: fakeImageId('app-v1'), digest: fakeDigest('app-v1') });
    assert.equal(pullFailed(await pull(port, bob, `fromImage=${encodeURIComponent('reg.example.com:5000/shared/app')}&tag=1`)), false);
    engine.images.push({ id: fakeImageId('app-v2'), repoTags: [], repoDigests: [] });
    engine.onCreate = () => engine.tagImage(fakeImageId('app-v2'), 'reg.example.com:5000/shared/app:1');
    const made = await create(port, bob, 'reg.example.com:5000/shared/app:1');
    assert.equal(made.status, 404);
    assert.equal(message(made), 'No such image: reg.example.com:5000/shared/app:1');
    assert.ok(engine.requests.some((r) => r.method === 'DELETE' && /\/containers\/new-id-[^/?]+\?force=1$/.test(r.url)), 'the container was removed');
    assert.equal([...engine.created.values()].includes(fakeImageId('app-v2')), false);
  });

  it("a shared image is usable by every project, and lists show other projects' registries to nobody", async () => {
    assert.equal((await create(port, bob, 'busybox')).status, 201);
    engine.tagImage(fakeImageId('busybox'), `${PRIVATE}:mirror`);
    engine.volumes.set('zun-gateway-pull-test-mirror', { [PULLED_PROJECT_LABEL]: 'p-alpha', [PULLED_REPOSITORY_LABEL]: PRIVATE, [PULLED_IMAGE_LABEL]: fakeImageId('busybox') });
    const bobs = (await listed(port, bob)).find((i) => i.Id === fakeImageId('busybox'));
    assert.deepEqual(bobs?.RepoTags, ['busybox:latest', 'b:latest']);
    const alices = (await listed(port, alice)).find((i) => i.Id === fakeImageId('busybox'));
    assert.deepEqual(alices?.RepoTags, ['busybox:latest', 'b:latest', `${PRIVATE}:mirror`]);
  });

  it('bad input: no image is a 400 saying to name one; a reference the engine cannot read is its own 400', async () => {
    const none = await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Cmd":["true"]}');
    assert.equal(none.status, 400);
    assert.match(message(none), /a container needs an image/);
    const bad = await create(port, alice, 'BusyBox');
    assert.equal(bad.status, 400);
    assert.match(message(bad), /invalid reference format: repository name must be lowercase/);
  });

  it("the gateway's volumes are nobody's: not listed, inspected, removed, created or mounted by a tenant", async () => {
    const [name] = [...engine.volumes.keys()].filter((n) => n.startsWith('zun-gateway-pull-'));
    assert.ok(name !== undefined);
    assert.equal((await call(port, 'GET', `/docker/v1.41/volumes/${name}`, alice)).status, 404);
    assert.equal((await call(port, 'DELETE', `/docker/v1.41/volumes/${name}`, alice)).status, 404);
    assert.ok(!JSON.stringify(JSON.parse((await call(port, 'GET', '/docker/v1.41/volumes', alice)).body)).includes('zun-gateway-pull-'));
    for (const n of [name, 'zun-gateway-pull-unused']) {
      const created = await call(port, 'POST', '/docker/v1.41/volumes/create', alice, JSON.stringify({ Name: n }));
      const mounted = await call(port, 'POST', '/docker/v1.41/containers/create', alice, JSON.stringify({ Image: 'busybox', HostConfig: { Binds: [`${n}:/x`] } }));
      for (const a of [created, mounted]) {
        assert.equal(a.status, 400, n);
        assert.match(message(a), /reserved for the gateway/);
      }
    }
    const labelled = await call(port, 'POST', '/docker/v1.41/volumes/create', alice, JSON.stringify({ Name: 'mine', Labels: { [PULLED_IMAGE_LABEL]: PRIVATE_ID } }));
    assert.equal(labelled.status, 400, 'a tenant cannot write a record by labels either');
  });

  it('docker login goes to the engine for an allowed registry, and is refused for others before the engine sees it', async () => {
    const body = JSON.stringify({ username: 'u', password: 'p', serveraddress: 'reg.example.com:5000' });
    assert.equal((await call(port, 'POST', '/docker/v1.41/auth', alice, body)).status, 200);
    const sent = engine.requests.findLast((r) => r.url === '/v1.41/auth');
    assert.deepEqual(JSON.parse(sent?.body ?? '{}'), { username: 'u', password: 'p', serveraddress: 'reg.example.com:5000' });
    const before = engine.requests.length;
    const other = await call(port, 'POST', '/docker/v1.41/auth', alice, JSON.stringify({ username: 'u', password: 'p', serveraddress: '169.254.169.254' }));
    assert.equal(other.status, 403);
    assert.match(message(other), /logging in to 169\.254\.169\.254 is not allowed through the gateway: the registries allowed are reg\.example\.com:5000/);
    assert.equal(engine.requests.length, before);
  });
});
