import assert from 'node:assert/strict';
import http from 'node:http';
import request from 'supertest';
import { ManualDelays } from '../helpers/changes.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream, headerLines } from '../helpers/recording-upstream.js';

describe("the gateway's own endpoints (supertest)", () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    upstream = await new RecordingUpstream().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member', 'reader'] });
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
  });
  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
  });

  it('GET / describes the gateway and its COE endpoints', async () => {
    const res = await request(gw.gateway.server).get('/').expect(200);
    assert.equal(res.body.name, 'zun-gateway');
    assert.deepEqual(res.body.endpoints, { k8s: '/k8s' });
  });

  it('GET /healthz is 200 without credentials', async () => {
    await request(gw.gateway.server).get('/healthz').expect(200, 'ok');
  });

  it('GET /readyz names a Keystone that is down, and stays 200: cached tokens keep working, every replica shares Keystone', async () => {
    const ok = await request(gw.gateway.server).get('/readyz').expect(200);
    assert.equal(ok.body.ready, true);
    assert.deepEqual(ok.body.checks.keystone, { ok: true, detail: 'reachable' });
    await keystone.stop();
    try {
      const down = await request(gw.gateway.server).get('/readyz').expect(200);
      assert.equal(down.body.ready, true);
      assert.deepEqual(down.body.checks.keystone, { ok: false, detail: 'unreachable' });
      assert.equal(down.body.checks.k8s.ok, true);
      assert.doesNotMatch(JSON.stringify(down.body), /token|password/i);
    } finally {
      await keystone.start();
    }
  });

  it('GET /readyz names an apiserver that is down and stays 200 (the /docker mount would still serve), no secret in the body', async () => {
    const dead = await new RecordingUpstream().start();
    const deadUrl = dead.url;
    await dead.stop();
    const other = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: deadUrl });
    try {
      const res = await request(other.gateway.server).get('/readyz').expect(200);
      assert.equal(res.body.ready, true);
      assert.equal(res.body.checks.keystone.ok, true);
      assert.equal(res.body.checks.k8s.ok, false);
      assert.match(res.body.checks.k8s.detail, /apiserver unreachable \(ECONNREFUSED\)/);
      assert.doesNotMatch(res.text, /gateway-sa-token|service-token|service-password/);
    } finally {
      await other.stop();
    }
  });

  it("GET /readyz is 503 when the apiserver refuses the gateway's own credentials (a rollout with a wrong kubeconfig must not pass)", async () => {
    for (const status of [401, 403]) {
      upstream.healthzStatus = status;
      try {
        const res = await request(gw.gateway.server).get('/readyz').expect(503);
        assert.equal(res.body.ready, false);
        assert.deepEqual(res.body.checks.k8s, { ok: false, detail: `apiserver answered HTTP ${status} to the gateway's own credentials (k8s.kubeconfig)`, blocking: true });
      } finally {
        upstream.healthzStatus = 200;
      }
    }
    // Any other answer is the apiserver's trouble, shared by every replica: reported, still ready.
    upstream.healthzStatus = 500;
    try {
      const res = await request(gw.gateway.server).get('/readyz').expect(200);
      assert.deepEqual(res.body.checks.k8s, { ok: false, detail: 'apiserver answered HTTP 500' });
    } finally {
      upstream.healthzStatus = 200;
    }
  });

  it('GET /readyz answers within its probe timeout even when Keystone hangs: that check says it did not answer', async () => {
    // Keystone's own timeout (10 s) is longer than the check's (2 s): the check gives up first. Its 2 s pass by hand.
    const delays = new ManualDelays();
    const patient = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, keystoneTimeoutSeconds: 10, timing: { delay: delays.delay } });
    const before = keystone.received;
    keystone.delayMs = Infinity;
    try {
      const answer = request(patient.gateway.server).get('/readyz').then((r) => r);
      // Keystone holds the ping; the apiserver's check has answered (its limit is no longer waited for).
      await Promise.all([keystone.changes.until(() => keystone.received > before), delays.changes.until(() => delays.waiting(2000) === 1)]);
      delays.advance(2000);
      const res = await answer;
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.checks.keystone, { ok: false, detail: 'no answer within 2 s' });
      assert.equal(res.body.checks.k8s.ok, true);
    } finally {
      keystone.delayMs = 0;
      await patient.stop();
    }
  });

  it('GET /readyz asks the apiserver with the gateway credentials, never leaking them', async () => {
    const before = upstream.requests.length;
    const res = await request(gw.gateway.server).get('/readyz').expect(200);
    const probe = upstream.requests.slice(before).find((r) => r.url === '/healthz');
    assert.ok(probe, 'the apiserver was probed');
    assert.deepEqual(headerLines(probe.rawHeaders, 'authorization'), ['Bearer gateway-sa-token']);
    assert.doesNotMatch(res.text, /gateway-sa-token/);
  });

  it('GET /whoami tells the caller who they are to the gateway', async () => {
    const res = await request(gw.gateway.server).get('/whoami').set('X-Auth-Token', 'alice-token').expect(200);
    assert.equal(res.body.user.name, 'alice');
    assert.equal(res.body.project.id, 'p-alpha');
    assert.deepEqual(res.body.roles, ['member', 'reader']);
    assert.ok(Date.parse(res.body.expiresAt) > Date.now());
    assert.doesNotMatch(JSON.stringify(res.body), /alice-token/);
  });

  it('GET /whoami without a token is a JSON 401 naming Keystone', async () => {
    const res = await request(gw.gateway.server).get('/whoami').expect(401);
    assert.match(res.headers['www-authenticate'] ?? '', /^Keystone uri=/);
    assert.match(res.body.message, /no token/);
  });

  it('unknown paths are JSON 404s without stack traces', async () => {
    const res = await request(gw.gateway.server).get('/nope').expect('content-type', /application\/json/).expect(404);
    assert.equal(res.body.error, 404);
    assert.match(res.body.message, /no such endpoint.*\/k8s\//);
    assert.doesNotMatch(res.text, /at .*\.js/);
  });

  it('a Kubernetes API path without /k8s (kubectl get --raw drops the prefix) gets a Status 404 saying where it is', async () => {
    for (const path of ['/api/v1/namespaces/x/pods', '/apis/apps/v1', '/openapi/v2', '/version']) {
      const before = upstream.requests.length;
      const res = await request(gw.gateway.server).get(path).set('X-Auth-Token', 'alice-token').expect(404);
      assert.equal(res.body.kind, 'Status', path);
      assert.equal(res.body.reason, 'NotFound');
      assert.match(res.body.message, /under \/k8s on this gateway: a kubeconfig's server must end in \/k8s.*kubectl get --raw \/k8s\/api/);
      assert.equal(upstream.requests.length, before, `${path} reached the apiserver`);
    }
    // An exec at the root: the same answer on the upgrade's socket.
    const conn = await RawConnection.open(gw.port);
    conn.write(requestHead('POST', '/api/v1/namespaces/x/pods/p/exec?command=sh', [['Host', 'gw'], ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
    const answer = await conn.untilEnded();
    assert.match(answer, /^HTTP\/1\.1 404/);
    assert.match(answer, /"kind":"Status".*under \/k8s on this gateway/s);
  });

  it('/k8sfoo is not routed to the k8s endpoint', async () => {
    const before = upstream.requests.length;
    const res = await request(gw.gateway.server).get('/k8sfoo/api').set('X-Auth-Token', 'alice-token').expect(404);
    assert.equal(res.body.error, 404);
    assert.equal(upstream.requests.length, before, 'the request reached the apiserver');
  });
});

describe("a gateway whose own service credentials Keystone refuses (a wrong password)", () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  before(async () => {
    keystone = await KeystoneDouble.withAlice();
    keystone.refuseLogins = true;
    upstream = await new RecordingUpstream().start();
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
  });
  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
  });

  it('is not ready, and /readyz names the setting to fix without its secret', async () => {
    const res = await request(gw.gateway.server).get('/readyz').expect(503);
    assert.equal(res.body.ready, false);
    assert.equal(res.body.checks.keystone.ok, false);
    assert.match(res.body.checks.keystone.detail, /^reachable, but Keystone refuses the gateway's service credentials \(keystone\.serviceCredentials, HTTP 401\)$/);
    assert.equal(res.body.checks.keystone.blocking, true);
    assert.equal(res.body.checks.k8s.ok, true);
    assert.doesNotMatch(res.text, /service-password/);
  });

  it("tells a tenant it is the gateway's fault (503, a Status for kubectl), and forwards nothing", async () => {
    const before = upstream.requests.length;
    const res = await request(gw.gateway.server).get('/k8s/api/v1/namespaces/os-alpha/pods').set('X-Auth-Token', 'alice-token').expect(503);
    assert.equal(res.body.kind, 'Status');
    assert.match(res.body.message, /refuses the gateway's own service account.*not a fault of your token.*operator/);
    assert.equal(upstream.requests.length, before);
  });
});

describe('graceful shutdown', () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;

  beforeEach(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register('t');
    upstream = await new RecordingUpstream().start();
  });
  afterEach(async () => {
    await upstream.stop();
    await keystone.stop();
  });

  const openSession = async (port: number): Promise<RawConnection> => {
    const session = await RawConnection.open(port);
    session.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/p/exec', [['X-Auth-Token', 't'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
    await session.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));
    return session;
  };

  const get = (url: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { headers: { 'x-auth-token': 't' }, agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        })
        .on('error', reject);
    });

  it('lets an in-flight request finish, refuses new connections, then closes upgraded sessions', async () => {
    // The grace period's clock moves only by hand: nothing below can be cut by it.
    const delays = new ManualDelays();
    const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, graceSeconds: 5, timing: { delay: delays.delay } });
    let session: RawConnection | undefined;
    try {
      session = await openSession(gw.port);
      const inflight = get(`${gw.url}/k8s/held`);
      await upstream.arrival((url) => url === '/held');
      const stopping = gw.stop();
      // The listener closes as shutdown begins.
      await assert.rejects(RawConnection.open(gw.port), /ECONNREFUSED/);
      // While the in-flight request runs, the upgraded session still carries bytes.
      session.write('still-there');
      await session.until((t) => t.includes('echo:still-there'));
      upstream.release();
      assert.deepEqual(await inflight, { status: 200, body: 'held-done' }, 'the in-flight request completed');
      await stopping;
      await session.untilEnded();
      assert.equal(delays.waiting(5000), 0, 'the grace period ended with the last request, not by its clock');
    } finally {
      session?.destroy();
    }
  });

  it('ends watches at once (their clients watch again elsewhere) while an ordinary request and an exec session get the grace period', async () => {
    const delays = new ManualDelays();
    const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, graceSeconds: 5, timing: { delay: delays.delay } });
    const watch = await RawConnection.open(gw.port);
    let session: RawConnection | undefined;
    try {
      session = await openSession(gw.port);
      const watchesBefore = upstream.requests.filter((r) => r.url.startsWith('/watch')).length;
      watch.write(requestHead('GET', '/k8s/watch?watch=true', [['X-Auth-Token', 't']]));
      await watch.until((t) => t.includes('ADDED'));
      const upstreamWatch = upstream.requests.filter((r) => r.url.startsWith('/watch'))[watchesBefore];
      assert.ok(upstreamWatch !== undefined);
      const inflight = get(`${gw.url}/k8s/held`);
      await upstream.arrival((url) => url === '/held');
      const stopping = gw.stop();
      await watch.untilEnded();
      assert.equal(delays.waiting(5000), 1, 'the watch ended while the grace period had all of its time left');
      // The apiserver's side of the watch is gone too (invariant 30).
      await upstream.closed(upstreamWatch);
      session.write('still-there');
      await session.until((t) => t.includes('echo:still-there'));
      upstream.release();
      assert.deepEqual(await inflight, { status: 200, body: 'held-done' });
      await stopping;
    } finally {
      watch.destroy();
      session?.destroy();
    }
  });

  for (const tls of [false, true]) {
    it(`a watch and an exec session still open at shutdown are audited before shutdown() returns${tls ? ' (TLS listener)' : ''}`, async function () {
      this.timeout(10_000);
      const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, graceSeconds: 0.2, tls });
      const session = await RawConnection.open(gw.port, tls);
      const watch = await RawConnection.open(gw.port, tls);
      try {
        session.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/p/exec', [['X-Auth-Token', 't'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
        await session.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));
        watch.write(requestHead('GET', '/k8s/watch', [['X-Auth-Token', 't']]));
        await watch.until((t) => t.includes('ADDED'));
        await gw.stop();
        // Read at once: main.ts exits the process as soon as shutdown() returns.
        const kinds = gw.audit.records.map((r) => `${r.kind} ${r.path} ${r.status}`);
        assert.ok(kinds.includes('session /k8s/api/v1/namespaces/os-alpha/pods/p/exec 101'), `the exec session's record: ${JSON.stringify(kinds)}`);
        assert.ok(kinds.some((k) => k.startsWith('request /k8s/watch ')), `the watch's record: ${JSON.stringify(kinds)}`);
      } finally {
        session.destroy();
        watch.destroy();
      }
    });
  }

  it('closes an upgraded session and a request that never ends once the grace period has passed', async () => {
    const delays = new ManualDelays();
    const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, graceSeconds: 1, timing: { delay: delays.delay } });
    let session: RawConnection | undefined;
    try {
      session = await openSession(gw.port);
      const hanging = get(`${gw.url}/k8s/hang`).then(
        () => 'answered',
        () => 'cut',
      );
      await upstream.arrival((url) => url === '/hang');
      const stopping = gw.stop();
      await delays.changes.until(() => delays.waiting(1000) === 1);
      delays.advance(999);
      session.write('still-there');
      await session.until((t) => t.includes('echo:still-there'));
      assert.equal(session.isEnded, false, 'the session was closed before the grace period ended');
      delays.advance(1);
      await stopping;
      await session.untilEnded();
      assert.equal(await hanging, 'cut');
    } finally {
      session?.destroy();
    }
  });
});
