import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { DEFAULT_NETWORK_LABEL } from '../../src/docker/project-network.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ManualClock } from '../helpers/changes.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { MemoryAudit } from '../helpers/memory-audit.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';

function call(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('/docker adapter (in-process gateway, fake engine on a unix socket, Keystone double)', () => {
  let keystone: KeystoneDouble;
  let engine: FakeDockerEngine;
  let gateway: Gateway;
  let port: number;
  const audit = new MemoryAudit();
  const alice = { 'x-auth-token': 'alice-token' };
  const bob = { 'x-auth-token': 'bob-token' };

  /** Each create body, sent as alice, is refused with 400 and a message matching `reason`, and none reaches the engine. */
  const refusedCreates = async (bodies: readonly string[], reason: RegExp): Promise<void> => {
    const before = creates();
    for (const body of bodies) {
      const res = await call(port, 'POST', '/docker/v1.41/containers/create', alice, body);
      assert.equal(res.status, 400, body);
      assert.match(JSON.parse(res.body).message, reason);
    }
    assert.equal(creates(), before, 'nothing reached the engine');
  };

  before(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' } });
    keystone.register('bob-token', { user: 'bob', project: { id: 'p-beta', name: 'beta' } });
    keystone.register('carol-token', { user: 'carol', project: { id: 'p-alpha', name: 'alpha' }, roles: ['reader'] });
    keystone.register('nobody-token', { user: 'nobody', project: { id: 'p-alpha', name: 'alpha' }, roles: ['observer'] });
    engine = await new FakeDockerEngine().start();
    engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
    engine.containers.push({ id: 'ffff00001111', name: 'kube-pod', labels: {} });
    engine.execs.set('exec-alice', 'a1b2c3d4e5f6');
    const config = parseConfig(
      [
        'listen: {host: 127.0.0.1, port: 0}',
        'keystone:',
        `  authUrl: ${keystone.url}`,
        '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
        `docker: {host: "unix://${engine.socketPath}", limits: {defaultMemory: 64m, maxMemory: 128m, maxContainersPerProject: 3}, sharedImages: [busybox]}`,
        'log: {level: silent}',
      ].join('\n'),
      {},
    );
    gateway = await createGateway(config, { version: 'test', logger: silentLogger(), audit });
    port = ((await gateway.listen()) as AddressInfo).port;
  });

  after(async () => {
    await gateway.shutdown();
    await engine.stop();
    await keystone.stop();
  });

  it('a Docker API path without /docker (DOCKER_HOST lacking the path) gets a Docker-style 404 saying how to set it', async () => {
    for (const path of ['/_ping', '/v1.41/containers/json', '/containers/json', '/info']) {
      const before = engine.requests.length;
      const r = await call(port, 'GET', path, alice);
      assert.equal(r.status, 404, path);
      assert.match((JSON.parse(r.body) as { message: string }).message, /under \/docker on this gateway: set DOCKER_HOST=tcp:\/\/<gateway host>:<port>\/docker/);
      assert.equal(engine.requests.length, before, `${path} reached the engine`);
    }
  });

  it("another project's container answers exactly like a missing one, by id, prefix and name", async () => {
    for (const ref of ['a1b2c3d4e5f6', 'a1b2c3', 'alice-web']) {
      const other = await call(port, 'GET', `/docker/v1.41/containers/${ref}/json`, bob);
      const missing = await call(port, 'GET', `/docker/v1.41/containers/${ref}-nothing/json`, bob);
      assert.equal(other.status, 404);
      assert.equal(other.body, missing.body.replace(`${ref}-nothing`, ref));
    }
    const own = await call(port, 'GET', '/docker/v1.41/containers/alice-web/json', alice);
    assert.equal(own.status, 200);
    assert.ok(engine.requests.some((r) => r.url === '/v1.41/containers/a1b2c3d4e5f6/json'), 'forwarded with the resolved id, not the name');
  });

  it("another project's container's files and output cannot be read: export, archive (GET and HEAD), logs (invariants.md 20)", async () => {
    const reads: Array<[string, string]> = [
      ['GET', '/docker/v1.41/containers/alice-web/export'],
      ['GET', '/docker/v1.41/containers/alice-web/archive?path=%2Fetc%2Fshadow'],
      ['HEAD', '/docker/v1.41/containers/a1b2c3d4e5f6/archive?path=%2Fetc'],
      ['GET', '/docker/v1.41/containers/a1b2c3/logs?stdout=1'],
      ['GET', '/docker/v%31.41/containers/alice-web/export'],
    ];
    for (const [method, path] of reads) {
      const before = engine.requests.length;
      const r = await call(port, method, path, bob);
      assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.body}`);
      assert.ok(
        engine.requests.slice(before).every((q) => !/\/(export|archive|logs)/.test(q.url)),
        `${method} ${path} reached the engine`,
      );
    }
  });

  it('POST /images/create serves pulls only: an import (fromSrc, repo) is refused before the engine sees it', async () => {
    for (const query of ['fromSrc=-&repo=evil', 'fromSrc=http%3A%2F%2F127.0.0.1%2Froot.tar', 'fromImage=busybox&fromSrc=-', 'repo=evil']) {
      const before = engine.requests.length;
      const r = await call(port, 'POST', `/docker/v1.41/images/create?${query}`, alice);
      assert.equal(r.status, 403, query);
      assert.match(JSON.parse(r.body).message, /pulls only/);
      assert.equal(engine.requests.length, before, `${query} reached the engine`);
    }
  });

  it("HEAD and GET /_ping carry the engine's Api-Version, which the CLI negotiates with (invariants.md 21)", async () => {
    for (const method of ['HEAD', 'GET']) {
      const r = await call(port, method, '/docker/_ping', alice);
      assert.equal(r.status, 200, method);
      assert.equal(r.headers['api-version'], '1.41', method);
    }
  });

  it('containers the gateway did not create (kubelet pods) are invisible to every tenant', async () => {
    assert.equal((await call(port, 'POST', '/docker/containers/kube-pod/stop', alice)).status, 404);
  });

  it("merges the project's label into list filters", async () => {
    await call(port, 'GET', `/docker/v1.41/containers/json?all=1&filters=${encodeURIComponent('{"status":["running"]}')}`, alice);
    const seen = engine.requests.at(-1) as { url: string };
    const filters = JSON.parse(new URL(`http://x${seen.url}`).searchParams.get('filters') as string);
    assert.deepEqual(filters, { status: ['running'], label: [`${OWNER_LABEL}=p-alpha`] });
  });

  it('forwards the checked, normalized create body with the owner label and default memory', async () => {
    const res = await call(port, 'POST', '/docker/v1.41/containers/create?name=x', alice, '{"Image":"busybox","Labels":{"app":"web"},"HostConfig":{}}');
    assert.equal(res.status, 201);
    const sent = JSON.parse((engine.requests.findLast((r) => r.url.startsWith('/v1.41/containers/create')) as { body: string }).body);
    assert.deepEqual(sent.Labels, { app: 'web', [OWNER_LABEL]: 'p-alpha' });
    assert.equal(sent.HostConfig.Memory, 64 * 2 ** 20);
    assert.equal((await call(port, 'POST', '/docker/containers/create', alice, '{"Image":"b","HostConfig":{"Memory":1073741824}}')).status, 400);
  });

  it('refuses a create beyond maxContainersPerProject, counting only the project\'s containers', async () => {
    engine.listed = 3;
    try {
      const res = await call(port, 'POST', '/docker/containers/create', alice, '{"Image":"b"}');
      assert.equal(res.status, 403);
      assert.match(JSON.parse(res.body).message, /already has 3 containers, the most allowed is 3/);
      const count = engine.requests.filter((r) => r.url.startsWith('/containers/json')).at(-1) as { url: string };
      assert.match(decodeURIComponent(count.url), /"label":\["org\.openstack\.zun-gateway\.project-id=p-alpha"\]/);
    } finally {
      engine.listed = 0;
    }
  });

  /**
   * Resolves, with their responses, once the gateway has read the whole body of `count` more requests to `path`: a
   * container create goes from there to the quota's turn without waiting on anything else.
   */
  const bodiesRead = (path: string, count: number, server: Gateway['server'] = gateway.server): Promise<http.ServerResponse[]> =>
    new Promise((resolve) => {
      const read: http.ServerResponse[] = [];
      const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
        if (req.url !== path) return;
        req.once('end', () => {
          read.push(res);
          if (read.length < count) return;
          server.off('request', onRequest);
          // One turn of the loop: the work that follows the body's end (checks, then the quota's turn) has run.
          setImmediate(() => resolve(read));
        });
      };
      server.on('request', onRequest);
    });

  const creates = (): number => engine.requests.filter((r) => r.url.startsWith('/containers/create')).length;
  // Without a network of its own to look up, a create goes from its body's end to the quota's turn at once.
  const noNetwork = '{"Image":"b","HostConfig":{"NetworkMode":"none"}}';

  it('parallel creates cannot overshoot maxContainersPerProject: ten at once with room for three make three', async () => {
    engine.listed = 0;
    // The first create stays at the engine until all ten have been read: every other one would count while it is there.
    engine.hold = (path) => path === '/containers/create';
    try {
      const read = bodiesRead('/docker/containers/create', 10);
      const answers = Promise.all(Array.from({ length: 10 }, () => call(port, 'POST', '/docker/containers/create', alice, noNetwork)));
      await read;
      await engine.changes.until(() => engine.held('/containers/create') > 0);
      engine.hold = () => false;
      engine.release();
      const statuses = (await answers).map((a) => a.status).sort();
      assert.deepEqual(statuses, [201, 201, 201, 403, 403, 403, 403, 403, 403, 403]);
      assert.equal(engine.listed, 3);
    } finally {
      engine.listed = 0;
      engine.hold = () => false;
      engine.release();
    }
  });

  /** Another replica of the gateway on the same Keystone double and engine; `docker` goes into its docker block. */
  const secondReplica = (docker: string): Promise<Gateway> =>
    createGateway(parseConfig(
      [
        'listen: {host: 127.0.0.1, port: 0}',
        'keystone:',
        `  authUrl: ${keystone.url}`,
        '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
        `docker: {host: "unix://${engine.socketPath}", ${docker}sharedImages: [busybox]}`,
        'log: {level: silent}',
      ].join('\n'),
      {},
    ), { version: 'test', logger: silentLogger(), audit: new MemoryAudit() });

  it('two replicas cannot overshoot maxContainersPerProject together: ten creates at once, five through each, make three', async () => {
    const second = await secondReplica('limits: {maxContainersPerProject: 3}, ');
    const secondPort = ((await second.listen()) as AddressInfo).port;
    engine.listed = 0;
    // The first create stays at the engine until both replicas have read all ten: every other one would count meanwhile.
    engine.hold = (path) => path === '/containers/create';
    try {
      const read = Promise.all([bodiesRead('/docker/containers/create', 5), bodiesRead('/docker/containers/create', 5, second.server)]);
      const answers = Promise.all(Array.from({ length: 10 }, (_, i) => call(i % 2 === 0 ? port : secondPort, 'POST', '/docker/containers/create', alice, noNetwork)));
      await read;
      await engine.changes.until(() => engine.held('/containers/create') > 0);
      engine.hold = () => false;
      engine.release();
      assert.deepEqual((await answers).map((a) => a.status).sort(), [201, 201, 201, 403, 403, 403, 403, 403, 403, 403]);
      assert.equal(engine.listed, 3);
      // Each lease is given back once its create's response has closed (the engine is asked, then the volume removed).
      await engine.changes.until(() => ![...engine.volumes.keys()].some((v) => v.startsWith('zun-gateway-lease-')));
    } finally {
      engine.listed = 0;
      engine.hold = () => false;
      engine.release();
      await second.shutdown();
    }
  });

  it("two replicas making a project's network at once make one, under the project's lease: both containers join it", async () => {
    keystone.register('gil-token', { user: 'gil', project: { id: 'p-theta', name: 'theta' } });
    const second = await secondReplica('');
    const secondPort = ((await second.listen()) as AddressInfo).port;
    const leaseTries = (): number => engine.requests.filter((r) => r.url.includes('/volumes/create') && r.body.includes('zun-gateway-lease-p-theta')).length;
    const making = (): number => engine.held('/networks/create (making)');
    engine.listed = 0;
    // dockerd checks the name (CheckDuplicate) as a create arrives and lists the network only once made, ~100 ms on:
    // both replicas' creates passed the check and made two. Here every create waits between the two until both
    // replicas have sent theirs, or one has and the other was refused the lease.
    engine.slowNetworkCreates = true;
    try {
      const before = leaseTries();
      const answers = Promise.all([port, secondPort].map((p) => call(p, 'POST', '/docker/v1.41/containers/create', { 'x-auth-token': 'gil-token' }, '{"Image":"b"}')));
      await engine.changes.until(() => making() === 2 || (making() === 1 && leaseTries() - before >= 2));
      engine.slowNetworkCreates = false;
      engine.release();
      assert.deepEqual((await answers).map((a) => a.status), [201, 201]);
      assert.deepEqual([...engine.networks.keys()].filter((n) => n.startsWith('zun-p-theta')), ['zun-p-theta'], 'one network');
      const modes = engine.requests.filter((r) => r.url.includes('/containers/create')).slice(-2).map((r) => JSON.parse(r.body).HostConfig.NetworkMode);
      assert.deepEqual(modes, ['net-zun-p-theta', 'net-zun-p-theta']);
      await engine.changes.until(() => !engine.volumes.has('zun-gateway-lease-p-theta'));
    } finally {
      engine.slowNetworkCreates = false;
      engine.release();
      engine.listed = 0;
      await second.shutdown();
    }
  });

  it("a tenant cannot take a volume name of the gateway's own (a squatted lease would stop another project)", async () => {
    for (const [path, body] of [
      ['/docker/volumes/create', '{"Name":"zun-gateway-lease-p-beta"}'],
      ['/docker/containers/create', '{"Image":"b","HostConfig":{"Binds":["zun-gateway-lease-p-beta:/x"]}}'],
    ] as const) {
      const res = await call(port, 'POST', path, alice, body);
      assert.equal(res.status, 400, path);
      assert.match(JSON.parse(res.body).message, /reserved for the gateway/);
    }
    assert.equal(engine.volumes.has('zun-gateway-lease-p-beta'), false);
  });

  /** A create sent on its own connection, whose client can leave: the gateway's response to it is returned too. */
  const leavingCreate = async (body: string, who = alice): Promise<{ client: http.ClientRequest; res: http.ServerResponse }> => {
    const read = bodiesRead('/docker/containers/create', 1);
    const client = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/docker/containers/create', headers: { ...who, 'content-type': 'application/json' } });
    client.on('error', () => undefined);
    client.end(body);
    const [res] = await read;
    return { client, res: res as http.ServerResponse };
  };
  const leaves = async ({ client, res }: { client: http.ClientRequest; res: http.ServerResponse }): Promise<void> => {
    client.destroy();
    // The gateway has seen the client go (the quota listens for this 'close' too).
    await new Promise((resolve) => (res.closed ? resolve(undefined) : res.once('close', resolve)));
  };

  it('a create whose client leaves while it waits its turn does not hold up the next ones, and is not made', async () => {
    engine.listed = 0;
    engine.hold = (path) => path === '/containers/create';
    try {
      const first = call(port, 'POST', '/docker/containers/create', alice, noNetwork);
      await engine.changes.until(() => engine.held('/containers/create') === 1);
      // The second waits behind the first, and its client gives up.
      await leaves(await leavingCreate(noNetwork));
      engine.hold = () => false;
      engine.release();
      assert.equal((await first).status, 201);
      const made = creates();
      assert.equal((await call(port, 'POST', '/docker/containers/create', alice, noNetwork)).status, 201, 'the next create');
      assert.equal(creates(), made + 1, 'the create whose client left was not made');
    } finally {
      engine.listed = 0;
      engine.hold = () => false;
      engine.release();
    }
  });

  it('a create whose client leaves before its turn (its project network being looked up) does not hold up the next ones', async () => {
    engine.listed = 0;
    // Bob's project network exists: looking it up is the create's only call before the quota's turn.
    engine.networks.set('zun-p-beta', { [OWNER_LABEL]: 'p-beta', [DEFAULT_NETWORK_LABEL]: 'true' });
    const lookupAnswered = new Promise<void>((resolve) => {
      const channel = diagnostics_channel.channel('undici:request:trailers');
      const done = (message: unknown): void => {
        if (!(message as { request: { path: string } }).request.path.startsWith('/networks?')) return;
        channel.unsubscribe(done);
        // One turn of the loop: the gateway has read the answer and gone on to ask for the quota's turn.
        setImmediate(resolve);
      };
      channel.subscribe(done);
    });
    engine.hold = (path) => path === '/containers/create';
    try {
      const first = call(port, 'POST', '/docker/containers/create', bob, noNetwork);
      await engine.changes.until(() => engine.held('/containers/create') === 1);
      // The second's network lookup is held at the engine, and its client leaves meanwhile.
      engine.hold = (path) => path === '/containers/create' || path === '/networks';
      const second = await leavingCreate('{"Image":"b"}', bob);
      await engine.changes.until(() => engine.held('/networks') === 1);
      await leaves(second);
      engine.release('/networks');
      // Only now, with the second waiting behind it, does the first create end.
      await lookupAnswered;
      engine.hold = () => false;
      engine.release();
      assert.equal((await first).status, 201);
      assert.equal((await call(port, 'POST', '/docker/containers/create', bob, noNetwork)).status, 201, 'the next create');
    } finally {
      engine.listed = 0;
      engine.hold = () => false;
      engine.release();
      engine.networks.delete('zun-p-beta');
    }
  });

  it('refuses a network mode pointing at a container that is not the caller\'s', async () => {
    const res = await call(port, 'POST', '/docker/containers/create', bob, '{"Image":"b","HostConfig":{"NetworkMode":"container:alice-web"}}');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).message, /not yours/);
  });

  it('exec start: the body reaches the engine before the 101, then bytes flow both ways with half-close', async () => {
    const c = await RawConnection.open(port);
    const body = '{"Detach":false,"Tty":false}';
    c.write(
      requestHead('POST', '/docker/v1.41/exec/exec-alice/start', [
        ['X-Auth-Token', 'alice-token'], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)],
        ['Connection', 'Upgrade'], ['Upgrade', 'tcp'],
      ]) + body,
    );
    await c.until((t) => t.includes('\r\n\r\n'));
    assert.match(c.text(), /^HTTP\/1\.1 101 UPGRADED/);
    c.write('stdin-bytes');
    await c.until((t) => t.includes('out:stdin-bytes'));
    c.endWrite();
    assert.ok((await c.untilEnded()).endsWith('exec-done'));
    const start = engine.requests.find((r) => r.url.includes('/exec/exec-alice/start'));
    assert.equal(start?.body, body);
  });

  it('exec start: stdin sent after the body and before the engine answers 101 reaches the engine (nothing is dropped in the gap)', async () => {
    let release!: () => void;
    engine.upgradeGate = new Promise<void>((r) => (release = r));
    const received = new Promise<void>((r) => (engine.onUpgradeRequest = r));
    const lookedUp = new Promise<void>((r) => (engine.onRequestArrived = (p) => p === '/exec/exec-alice/json' && r()));
    try {
      const c = await RawConnection.open(port);
      const body = '{"Detach":false,"Tty":false}';
      c.write(
        requestHead('POST', '/docker/v1.41/exec/exec-alice/start', [
          ['X-Auth-Token', 'alice-token'], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)],
          ['Connection', 'Upgrade'], ['Upgrade', 'tcp'],
        ]),
      );
      // The body comes after the head (the gateway is checking the exec's owner): it reads the body off the connection.
      await lookedUp;
      c.write(body);
      await received;
      c.write('typed-before-the-101');
      // Loopback delivers at once: a poll phase of this (in-process) gateway reads those bytes before the 101 exists.
      for (let i = 0; i < 2; i += 1) await new Promise((r) => setImmediate(r));
      release();
      await c.until((t) => t.includes('out:typed-before-the-101'));
      c.endWrite();
      assert.ok((await c.untilEnded()).endsWith('exec-done'));
    } finally {
      engine.upgradeGate = undefined;
      engine.onUpgradeRequest = undefined;
      engine.onRequestArrived = undefined;
    }
  });

  it("the engine never sees the caller's credentials or forwarding claims, on plain and hijacked requests", async () => {
    const before = engine.requests.length;
    const hostile = { 'X-Forwarded-For': '10.9.9.9', Forwarded: 'for=10.9.9.9', 'X-Real-IP': '10.9.9.9', 'Impersonate-User': 'admin' };
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/a1b2c3d4e5f6/json', { ...alice, ...hostile })).status, 200);
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/a1b2c3d4e5f6/json', { authorization: 'Bearer alice-token', ...hostile })).status, 200);
    const c = await RawConnection.open(port);
    const body = '{"Detach":false,"Tty":false}';
    c.write(
      requestHead('POST', '/docker/v1.41/exec/exec-alice/start', [
        ['Authorization', 'Bearer alice-token'], ['X-Forwarded-For', '10.9.9.9'], ['Content-Type', 'application/json'],
        ['Content-Length', String(body.length)], ['Connection', 'Upgrade'], ['Upgrade', 'tcp'],
      ]) + body,
    );
    await c.until((t) => t.includes('\r\n\r\n'));
    c.endWrite();
    await c.untilEnded();
    const seen = engine.requests.slice(before);
    assert.ok(seen.some((r) => r.url.includes('/exec/exec-alice/start')), 'the exec start reached the engine');
    for (const r of seen) {
      const names = r.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      for (const banned of ['authorization', 'x-auth-token', 'x-forwarded-for', 'forwarded', 'x-real-ip', 'impersonate-user']) {
        assert.ok(!names.includes(banned), `${banned} reached the engine on ${r.method} ${r.url}`);
      }
      assert.ok(!r.rawHeaders.some((v) => v.includes('alice-token')), `the token reached the engine on ${r.method} ${r.url}`);
    }
  });


  const engineSaw = (fragment: string) => engine.requests.filter((r) => r.url.includes(fragment));
  /** The body of the last request the engine saw whose URL has `fragment`, parsed. */
  const lastSent = (fragment: string) => JSON.parse(engineSaw(fragment).at(-1)?.body ?? 'null');

  it('refuses API versions below 1.40: below 1.24 start applied a HostConfig from its body', async () => {
    const before = engine.requests.length;
    const res = await call(port, 'POST', '/docker/v1.23/containers/alice-web/start', alice, '{"Binds":["/:/host"],"Privileged":true}');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).message, /API version 1\.23 is not served through the gateway, the oldest is 1\.40/);
    assert.equal((await call(port, 'GET', '/docker/v%31.12/containers/json', alice)).status, 400, 'an encoded old version');
    assert.equal(engine.requests.length, before, 'the engine saw nothing');
  });

  it('an endpoint without a body forwards none: a HostConfig sent to start is refused, an empty {} is dropped', async () => {
    const refused = await call(port, 'POST', '/docker/v1.41/containers/alice-web/start', alice, '{"Binds":["/:/host"]}');
    assert.equal(refused.status, 400);
    assert.match(JSON.parse(refused.body).message, /takes no body through the gateway/);
    assert.equal(engineSaw('/containers/a1b2c3d4e5f6/start').length, 0);
    const empty = await call(port, 'POST', '/docker/v1.41/containers/alice-web/start', alice, '{}');
    assert.equal(empty.status, 200);
    assert.equal(engineSaw('/containers/a1b2c3d4e5f6/start').at(-1)?.body, '');
  });

  it('a detached exec start (docker exec -d) is a plain request; an attached one must be hijacked', async () => {
    assert.equal((await call(port, 'POST', '/docker/v1.41/exec/exec-alice/start', alice, '{"Detach":true,"Tty":false}')).status, 200);
    assert.equal(JSON.parse(engineSaw('/exec/exec-alice/start').at(-1)?.body ?? '').Detach, true);
    const attached = await call(port, 'POST', '/docker/v1.41/exec/exec-alice/start', alice, '{"Detach":false}');
    assert.equal(attached.status, 403);
    assert.match(JSON.parse(attached.body).message, /hijacked connection/);
  });

  it('a reader role lists, inspects and reads logs; exec, cp out, export and changes need a write role; no known role, nothing', async () => {
    const carol = { 'x-auth-token': 'carol-token' };
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/json', carol)).status, 200);
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/alice-web/json', carol)).status, 200);
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/alice-web/logs?stdout=1', carol)).status, 200);
    const before = engine.requests.length;
    for (const [method, path, body] of [
      ['POST', '/docker/v1.41/containers/alice-web/exec', '{"Cmd":["cat","/secret"]}'],
      ['DELETE', '/docker/v1.41/containers/alice-web?force=1', undefined],
      ['GET', '/docker/v1.41/containers/alice-web/archive?path=/secret', undefined],
      ['GET', '/docker/v1.41/containers/alice-web/export', undefined],
      ['POST', '/docker/v1.41/containers/create', '{"Image":"b"}'],
    ] as const) {
      const res = await call(port, method, path, carol, body);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(JSON.parse(res.body).message, /allow listing, inspecting and reading logs only: this needs one of admin, member/);
    }
    const nobody = await call(port, 'GET', '/docker/v1.41/containers/json', { 'x-auth-token': 'nobody-token' });
    assert.equal(nobody.status, 403);
    assert.match(JSON.parse(nobody.body).message, /\(observer\) do not allow the Docker API/);
    assert.equal(engine.requests.length, before, 'the engine saw none of the refused requests');
  });

  it("mounting another project's volume is refused, by -v and by --mount; a missing one is created as the caller's", async () => {
    engine.volumes.set('bob-data', { [OWNER_LABEL]: 'p-beta' });
    for (const hostConfig of ['{"Binds":["bob-data:/x"]}', '{"Mounts":[{"Type":"volume","Source":"bob-data","Target":"/x"}]}']) {
      const res = await call(port, 'POST', '/docker/v1.41/containers/create', alice, `{"Image":"b","HostConfig":${hostConfig}}`);
      assert.equal(res.status, 409, hostConfig);
      assert.match(JSON.parse(res.body).message, /volume name bob-data is taken on this engine/);
      assert.doesNotMatch(res.body, /p-beta|Mountpoint/);
    }
    const res = await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"Mounts":[{"Type":"volume","Source":"alice-new","Target":"/x","VolumeOptions":{"Labels":{"tier":"db"}}}]}}');
    assert.equal(res.status, 201);
    assert.deepEqual(engine.volumes.get('alice-new'), { tier: 'db', [OWNER_LABEL]: 'p-alpha' });
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"Binds":["alice-new:/y:ro"]}}')).status, 201, 'her own volume again');
  });

  it("a volume create for another project's name is a conflict that shows nothing of it", async () => {
    engine.volumes.set('bob-vol', { [OWNER_LABEL]: 'p-beta' });
    const res = await call(port, 'POST', '/docker/v1.41/volumes/create', alice, '{"Name":"bob-vol"}');
    assert.equal(res.status, 409);
    assert.doesNotMatch(res.body, /p-beta|Mountpoint|_data/);
    const own = await call(port, 'POST', '/docker/v1.41/volumes/create', alice, '{"Name":"alice-vol"}');
    assert.equal(own.status, 201);
    assert.equal(JSON.parse(own.body).Labels[OWNER_LABEL], 'p-alpha');
  });

  it("joining another project's network is refused, by NetworkMode and by EndpointsConfig, name or id", async () => {
    engine.networks.set('bobnet', { [OWNER_LABEL]: 'p-beta' });
    engine.networks.set('alicenet', { [OWNER_LABEL]: 'p-alpha' });
    await refusedCreates(
      [
        '{"Image":"b","HostConfig":{"NetworkMode":"bobnet"}}',
        '{"Image":"b","HostConfig":{"NetworkMode":"net-bobnet"}}',
        '{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"bobnet":{}}}}',
      ],
      /names a network that is not yours/,
    );
    const own = await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"},"NetworkingConfig":{"EndpointsConfig":{"alicenet":{}}}}');
    assert.equal(own.status, 201);
  });

  it('docker top: only ps forms whose PID column can be trusted are served (a renamed column, no header line, sorting, selections are refused)', async () => {
    const tops = () => engineSaw('/top');
    const before = tops().length;
    for (const args of [
      '-orss=PID -oargs e -e --forest',
      '-o etimes=PID',
      '--no-headers --sort ucmd -o ucmd,status,pid,args e',
      '-eo lstart,pid,args',
      '-eo args,pid',
      '-eo comm,rss',
      '-ef --sort pid',
      '-p 1',
      'aux -N',
      'h aux',
    ]) {
      const res = await call(port, 'GET', `/docker/v1.41/containers/alice-web/top?ps_args=${encodeURIComponent(args)}`, alice);
      assert.equal(res.status, 403, args);
      assert.match(JSON.parse(res.body).message, /is not served through the gateway: the engine would match ps's rows by a column it cannot trust; use no options, one of -ef/);
    }
    const twice = await call(port, 'GET', `/docker/v1.41/containers/alice-web/top?ps_args=-ef&ps_args=${encodeURIComponent('-o rss=PID')}`, alice);
    assert.equal(twice.status, 403, 'every ps_args is checked');
    assert.equal(tops().length, before, 'none reached the engine');
    for (const args of ['-ef', 'aux', '-eo pid,comm', '-o user,pid,ppid,%cpu,args', '']) {
      assert.equal((await call(port, 'GET', `/docker/v1.41/containers/alice-web/top?ps_args=${encodeURIComponent(args)}`, alice)).status, 200, args);
      assert.equal(new URL(tops().at(-1)?.url ?? '', 'http://e').searchParams.get('ps_args'), args);
    }
  });

  it("an endpoint's NetworkID is refused at create and at connect: the engine would join the network it names, not the key", async () => {
    engine.networks.set('bobnet', { [OWNER_LABEL]: 'p-beta' });
    engine.networks.set('alicenet', { [OWNER_LABEL]: 'p-alpha' });
    await refusedCreates(
      [
        '{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"bridge":{"NetworkID":"net-bobnet"}}}}',
        '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"},"NetworkingConfig":{"EndpointsConfig":{"alicenet":{"NetworkID":"net-bobnet"}}}}',
        '{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"alicenet":{"networkid":"ne"}}}}',
      ],
      /EndpointsConfig\.\w+\.NetworkID is not allowed through the gateway: the engine would join the network it names/,
    );
    const connect = await call(port, 'POST', '/docker/v1.41/networks/alicenet/connect', alice, '{"Container":"alice-web","EndpointConfig":{"NetworkID":"net-bobnet"}}');
    assert.equal(connect.status, 400);
    assert.match(JSON.parse(connect.body).message, /EndpointConfig\.NetworkID is not allowed/);
    assert.equal(engine.requests.some((r) => r.url.endsWith('/connect')), false);
    // Zero values (the Go SDK sends every field) pass.
    engine.listed = 0;
    const own = await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"},"NetworkingConfig":{"EndpointsConfig":{"alicenet":{"NetworkID":"","Aliases":["web"]}}}}');
    assert.equal(own.status, 201);
  });

  it("an endpoint for the shared bridge beside NetworkMode none or the project's own network is refused (the engine joined the bridge too)", async () => {
    engine.networks.set('alicenet', { [OWNER_LABEL]: 'p-alpha' });
    engine.listed = 0;
    await refusedCreates(
      [
        '{"Image":"b","HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}',
        '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"},"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}',
      ],
      /EndpointsConfig\.(bridge|default) beside NetworkMode (none|alicenet): the engine's shared bridge is not served/,
    );
    // A name the engine looks up (it matches `bridge` exactly), checked like any other.
    await refusedCreates(['{"Image":"b","HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"Bridge":{}}}}'], /names a network that is not yours/);
  });

  it("a create's networks and a connect's network go to the engine pinned to the checked id (a never-started container keeps them by name)", async () => {
    engine.networks.set('alicenet', { [OWNER_LABEL]: 'p-alpha' });
    engine.listed = 0;
    const named = await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"},"NetworkingConfig":{"EndpointsConfig":{"alicenet":{"Aliases":["web"],"networkid":""}}}}');
    assert.equal(named.status, 201);
    assert.equal(lastSent('/containers/create').HostConfig.NetworkMode, 'net-alicenet');
    assert.deepEqual(lastSent('/containers/create').NetworkingConfig.EndpointsConfig, { 'net-alicenet': { Aliases: ['web'], NetworkID: 'net-alicenet' } });
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"alicenet"}}')).status, 201);
    assert.deepEqual(lastSent('/containers/create').NetworkingConfig, { EndpointsConfig: { 'net-alicenet': { NetworkID: 'net-alicenet' } } });
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"none"}}')).status, 201);
    assert.equal(lastSent('/containers/create').NetworkingConfig, undefined, 'none stays as sent');
    assert.equal((await call(port, 'POST', '/docker/v1.41/networks/alicenet/connect', alice, '{"Container":"alice-web","EndpointConfig":{"Aliases":["db"]}}')).status, 200);
    assert.deepEqual(lastSent('/connect'), { Container: 'a1b2c3d4e5f6', EndpointConfig: { Aliases: ['db'], NetworkID: 'net-alicenet' } });
    assert.equal((await call(port, 'POST', '/docker/v1.41/networks/alicenet/connect', alice, '{"Container":"alice-web"}')).status, 200);
    assert.deepEqual(lastSent('/connect').EndpointConfig, { NetworkID: 'net-alicenet' });
    assert.equal((await call(port, 'POST', '/docker/v1.41/networks/alicenet/disconnect', alice, '{"Container":"alice-web","Force":true}')).status, 200);
    assert.deepEqual(lastSent('/disconnect'), { Container: 'a1b2c3d4e5f6', Force: true });
  });

  it("a container that names no network (or the default bridge) joins its project's own network, made once; none stays none", async () => {
    engine.listed = 0;
    const sent = () => lastSent('/containers/create');
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b"}')).status, 201);
    assert.equal(sent().HostConfig.NetworkMode, 'net-zun-p-alpha');
    assert.deepEqual(engine.networks.get('zun-p-alpha'), { [OWNER_LABEL]: 'p-alpha', [DEFAULT_NETWORK_LABEL]: 'true' });
    const body = '{"Image":"b","HostConfig":{"NetworkMode":"default"},"NetworkingConfig":{"EndpointsConfig":{"default":{"Aliases":["web"]}}}}';
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, body)).status, 201);
    assert.equal(sent().HostConfig.NetworkMode, 'net-zun-p-alpha');
    assert.deepEqual(sent().NetworkingConfig.EndpointsConfig, { 'net-zun-p-alpha': { Aliases: ['web'], NetworkID: 'net-zun-p-alpha' } });
    assert.equal(engine.requests.filter((r) => r.url === '/networks/create' && r.body.includes('"zun-p-alpha"')).length, 1, 'made once');
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', bob, '{"Image":"b","HostConfig":{"NetworkMode":"bridge"}}')).status, 201);
    assert.equal(sent().HostConfig.NetworkMode, 'net-zun-p-beta', "bob's own");
    engine.listed = 0;
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', alice, '{"Image":"b","HostConfig":{"NetworkMode":"none"}}')).status, 201);
    assert.equal(sent().HostConfig.NetworkMode, 'none');
    engine.listed = 0;
  });

  it("when the engine cannot make the project's network (address pools used up), the create fails with 503 saying so and what to do", async () => {
    keystone.register('carl-token', { user: 'carl', project: { id: 'p-gamma', name: 'gamma' } });
    engine.failNetworkCreate = 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network';
    try {
      // dockerd 20.10 answers pools used up with 404, which the docker CLI, seeing it from a create, took for a
      // missing image ("Unable to find image ... locally") and went pulling: whatever the engine said, 503.
      for (const status of [404, 500]) {
        engine.failNetworkCreateStatus = status;
        const res = await call(port, 'POST', '/docker/v1.41/containers/create', { 'x-auth-token': 'carl-token' }, '{"Image":"b"}');
        assert.equal(res.status, 503);
        assert.match(JSON.parse(res.body).message, new RegExp(`could not create the project's network \\(HTTP ${status}: could not find an available, non-overlapping IPv4 address pool.*ask the operator`));
      }
    } finally {
      engine.failNetworkCreate = undefined;
      engine.failNetworkCreateStatus = 500;
      engine.listed = 0;
    }
  });

  it('a project makes at most maxNetworksPerProject networks (5 by default): eight at once with room for five make five; others still can', async () => {
    keystone.register('gus-token', { user: 'gus', project: { id: 'p-eta', name: 'eta' } });
    const gus = { 'x-auth-token': 'gus-token' };
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => call(port, 'POST', '/docker/v1.41/networks/create', gus, `{"Name":"eta-${i}"}`)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 201, 201, 201, 201, 403, 403, 403]);
    const refusal = answers.find((a) => a.status === 403);
    assert.match(JSON.parse(refusal?.body ?? '{}').message, /^project eta already has 5 networks, the most allowed is 5; remove some first$/);
    assert.equal([...engine.networks.values()].filter((labels) => labels[OWNER_LABEL] === 'p-eta').length, 5);
    // Another project's networks are not counted against it.
    assert.equal((await call(port, 'POST', '/docker/v1.41/networks/create', alice, '{"Name":"alice-eta"}')).status, 201);
  });

  it("a project's network is made once: creates at once share one, and a replica's create that lands first is taken, not doubled", async () => {
    keystone.register('dora-token', { user: 'dora', project: { id: 'p-delta', name: 'delta' } });
    keystone.register('eve-token', { user: 'eve', project: { id: 'p-eps', name: 'eps' } });
    const made = () => engine.requests.filter((r) => r.url === '/networks/create').length;
    try {
      const before = made();
      const answers = await Promise.all([1, 2, 3].map(() => call(port, 'POST', '/docker/v1.41/containers/create', { 'x-auth-token': 'dora-token' }, '{"Image":"b"}')));
      assert.deepEqual(answers.map((a) => a.status), [201, 201, 201]);
      assert.equal(made() - before, 1, 'three creates at once, one network');
      assert.deepEqual([...engine.networks.keys()].filter((n) => n.startsWith('zun-p-delta')), ['zun-p-delta']);
      engine.listed = 0; // the fake engine counts every project's containers as each one's
      // Another replica makes eve's network between this one's look and its create: CheckDuplicate gets 409, and the
      // other replica's network is the one.
      engine.beforeNetworkCreate = () => {
        engine.beforeNetworkCreate = undefined;
        engine.networks.set('zun-p-eps', { [OWNER_LABEL]: 'p-eps', [DEFAULT_NETWORK_LABEL]: 'true' });
      };
      const eve = await call(port, 'POST', '/docker/v1.41/containers/create', { 'x-auth-token': 'eve-token' }, '{"Image":"b"}');
      assert.equal(eve.status, 201, eve.body);
      const sent = lastSent('/containers/create');
      assert.equal(sent.HostConfig.NetworkMode, 'net-zun-p-eps');
      assert.deepEqual([...engine.networks.keys()].filter((n) => n.startsWith('zun-p-eps')), ['zun-p-eps'], 'no second network');
      // A network named like the project's that is not labelled as its own (anyone may take a name) is not taken.
      keystone.register('finn-token', { user: 'finn', project: { id: 'p-zeta', name: 'zeta' } });
      engine.networks.set('zun-p-zeta', { [OWNER_LABEL]: 'p-beta' });
      engine.listed = 0;
      assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create', { 'x-auth-token': 'finn-token' }, '{"Image":"b"}')).status, 201);
      const own = JSON.parse((engine.requests.filter((r) => r.url.includes('/containers/create')).at(-1) as { body: string }).body);
      assert.notEqual(own.HostConfig.NetworkMode, 'net-zun-p-zeta');
      assert.deepEqual(engine.networks.get(own.HostConfig.NetworkMode.slice('net-'.length)), { [OWNER_LABEL]: 'p-zeta', [DEFAULT_NETWORK_LABEL]: 'true' });
    } finally {
      engine.beforeNetworkCreate = undefined;
      engine.listed = 0;
    }
  });

  it('a pull from the engine host\'s loopback or a private address is refused before the engine fetches it', async () => {
    const before = engine.requests.length;
    for (const image of ['127.0.0.1:5000/v3/x', 'localhost:19090/foo', '10.0.0.1/x']) {
      const res = await call(port, 'POST', `/docker/v1.41/images/create?fromImage=${encodeURIComponent(image)}&tag=latest`, alice);
      assert.equal(res.status, 403, image);
      assert.match(JSON.parse(res.body).message, /not allowed through the gateway/);
    }
    assert.equal(engine.requests.length, before);
  });

  it("creating or renaming to a name another project's container holds is a conflict that does not show its id", async () => {
    engine.containers.push({ id: 'b0b0b0b0b0b0', name: 'bob-web', labels: { [OWNER_LABEL]: 'p-beta' } });
    const before = engine.requests.filter((r) => r.method === 'POST').length;
    for (const [path, body] of [['/docker/v1.41/containers/create?name=bob-web', '{"Image":"b"}'], ['/docker/v1.41/containers/alice-web/rename?name=%2Fbob-web', undefined]] as const) {
      const res = await call(port, 'POST', path, alice, body);
      assert.equal(res.status, 409, path);
      assert.match(JSON.parse(res.body).message, /name "\/bob-web" is already in use on this engine/);
      assert.doesNotMatch(res.body, /b0b0/);
    }
    assert.equal(engine.requests.filter((r) => r.method === 'POST').length, before, 'nothing was created or renamed');
    // A name that is only a prefix of another project's container id is free; the caller's own name goes to the engine.
    engine.listed = 0;
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create?name=b0b0', alice, '{"Image":"b"}')).status, 201);
    assert.equal((await call(port, 'POST', '/docker/v1.41/containers/create?name=alice-web', alice, '{"Image":"b"}')).status, 201);
  });

  it("exec instances of another project's container look missing", async () => {
    const res = await call(port, 'GET', '/docker/exec/exec-alice/json', bob);
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.body).message, 'No such exec instance: exec-alice');
  });

  it('errors are Docker {"message"} bodies: 401 without a token, 403 for host-level endpoints', async () => {
    const noToken = await call(port, 'GET', '/docker/containers/json', {});
    assert.equal(noToken.status, 401);
    assert.match(JSON.parse(noToken.body).message, /^no token; the docker CLI sends one from ~\/\.docker\/config\.json: \{"HttpHeaders": \{"X-Auth-Token": /);
    // A token Keystone no longer accepts: the message says what a docker user does about it, not only kubectl's way.
    const stale = await call(port, 'GET', '/docker/containers/json', { 'x-auth-token': 'gAAAAA-revoked' });
    assert.equal(stale.status, 401);
    assert.match(JSON.parse(stale.body).message, /token is not valid.*docker: put it in ~\/\.docker\/config\.json's HttpHeaders/);
    const build = await call(port, 'POST', '/docker/v1.41/build', alice);
    assert.equal(build.status, 403);
    assert.match(JSON.parse(build.body).message, /builds run on the host/);
  });

  /** A second gateway on the fake engine, authenticating itself with an application credential at `keystoneUrl`. */
  const appCredentialGateway = async (keystoneUrl: string, keystoneExtra: readonly string[] = [], now?: () => number) => {
    const gateway = await createGateway(
      parseConfig(
        [
          'listen: {host: 127.0.0.1, port: 0}',
          'keystone:',
          `  authUrl: ${keystoneUrl}`,
          '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
          ...keystoneExtra,
          `docker: {host: "unix://${engine.socketPath}"}`,
          'log: {level: silent}',
        ].join('\n'),
        {},
      ),
      { version: 'test', logger: silentLogger(), audit: new MemoryAudit(), ...(now !== undefined ? { now } : {}) },
    );
    return { gateway, port: ((await gateway.listen()) as AddressInfo).port };
  };

  it('application credentials in Authorization: Basic are exchanged once and cached', async () => {
    // The double answers every POST /auth/tokens with service-token-<n>; let those validate as alice's.
    for (let n = 1; n <= 20; n += 1) keystone.register(`service-token-${n}`, { user: 'alice', project: { id: 'p-alpha', name: 'alpha' } });
    const before = keystone.issueCalls;
    const basic = { authorization: `Basic ${Buffer.from('ac-id:ac-secret').toString('base64')}` };
    for (let i = 0; i < 5; i += 1) assert.equal((await call(port, 'GET', '/docker/version', basic)).status, 200);
    assert.equal(keystone.issueCalls - before, 1, 'one exchange for five requests');
    // The cache is keyed by id and secret: the id alone (it is in every audit record) never reuses the token.
    keystone.refuseLogins = true;
    try {
      const guessed = { authorization: `Basic ${Buffer.from('ac-id:not-the-secret').toString('base64')}` };
      assert.equal((await call(port, 'GET', '/docker/version', guessed)).status, 401);
    } finally {
      keystone.refuseLogins = false;
    }
  });

  it('an application credential whose exchanged token Keystone revoked is exchanged again, not refused until that token expires', async () => {
    // A password change (or a role or group change) revokes every token of the user; application credentials stay good.
    // A gateway whose cache trusts a validated token for 1 s, so the revocation is seen a second later.
    const clock = new ManualClock();
    const { gateway: shortCache, port: shortPort } = await appCredentialGateway(keystone.url, ['  cacheTtlSeconds: 1'], clock.now);
    try {
      for (let n = 1; n <= 60; n += 1) keystone.register(`service-token-${n}`, { user: 'alice', project: { id: 'p-alpha', name: 'alpha' } });
      const basic = { authorization: `Basic ${Buffer.from('ac-revoked-id:ac-secret').toString('base64')}` };
      assert.equal((await call(shortPort, 'GET', '/docker/version', basic)).status, 200);
      for (let n = 1; n <= keystone.issued; n += 1) keystone.revoke(`service-token-${n}`);
      clock.advance(1100);
      const before = keystone.issueCalls;
      const again = await Promise.all([1, 2, 3].map(() => call(shortPort, 'GET', '/docker/version', basic)));
      assert.deepEqual(
        again.map((r) => r.status),
        [200, 200, 200],
        again.map((r) => r.body).join('\n'),
      );
      assert.equal(keystone.issueCalls - before, 1, 'one new exchange for the three requests');
      assert.equal((await call(shortPort, 'GET', '/docker/version', basic)).status, 200);
      assert.equal(keystone.issueCalls - before, 1, 'the new token is kept');
    } finally {
      await shortCache.shutdown();
    }
  });

  it('an application credential whose fresh tokens Keystone refuses too costs Keystone no exchange per request', async () => {
    // Keystone issues tokens for the credential but refuses to validate them (404), as it does for a credential with
    // access rules when asked without OpenStack-Identity-Access-Rules.
    const refusing = await new KeystoneDouble().start();
    const { gateway: gw, port: gwPort } = await appCredentialGateway(refusing.url);
    try {
      const basic = { authorization: `Basic ${Buffer.from('ac-refused-id:ac-secret').toString('base64')}` };
      for (let i = 0; i < 5; i += 1) assert.equal((await call(gwPort, 'GET', '/docker/version', basic)).status, 401);
      // The gateway's own service token, one exchange, and one more after the first refusal: no more.
      assert.ok(refusing.issueCalls <= 3, `${refusing.issueCalls} calls to POST /v3/auth/tokens for 5 requests`);
    } finally {
      await gw.shutdown();
      await refusing.stop();
    }
  });

  it("an application credential with access rules (docker-config's) works on the paths its rules allow, and only there", async () => {
    const user = keystone.addUser({ id: 'alice-id', name: 'alice', password: 'pw', projects: { alpha: { id: 'p-alpha', roles: ['member'] } } });
    const rules = (methods: readonly string[], rulePath: string) => methods.map((method, i) => ({ service: 'zun-gateway', method, path: rulePath, id: `r${i}` }));
    const credential = (id: string, accessRules: ReturnType<typeof rules>) => {
      keystone.applicationCredentials.set(id, { id, name: id, description: '', secret: `${id}-secret`, user, project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'], accessRules });
      return { authorization: `Basic ${Buffer.from(`${id}:${id}-secret`).toString('base64')}` };
    };
    const docker = credential('ac-docker-rules', rules(['GET', 'HEAD', 'POST', 'PUT', 'DELETE'], '/docker/**'));
    assert.equal((await call(port, 'GET', '/docker/version', docker)).status, 200);
    assert.equal((await call(port, 'GET', '/docker/v1.41/containers/json', docker)).status, 200);
    const getOnly = credential('ac-get-info', rules(['GET'], '/docker/*/info'));
    assert.equal((await call(port, 'GET', '/docker/v1.41/info', getOnly)).status, 200);
    const refused = await call(port, 'GET', '/docker/v1.41/containers/json', getOnly);
    assert.equal(refused.status, 403);
    assert.match(JSON.parse(refused.body).message, /access rules \(GET \/docker\/\*\/info on zun-gateway\) that do not allow GET \/docker\/v1\.41\/containers\/json on zun-gateway/);
  });

  it('a Basic credential Keystone refuses is a 401 saying Basic takes an application credential, not a password', async () => {
    keystone.refuseLogins = true;
    try {
      const res = await call(port, 'GET', '/docker/version', { authorization: `Basic ${Buffer.from('alice:her-password').toString('base64')}` });
      assert.equal(res.status, 401);
      assert.match(JSON.parse(res.body).message, /rejected the application credential.*not a user name and password/);
      assert.doesNotMatch(res.body, /her-password/);
    } finally {
      keystone.refuseLogins = false;
    }
  });
});
