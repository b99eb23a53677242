import assert from 'node:assert/strict';
import http from 'node:http';
import request from 'supertest';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

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

  it('GET /readyz is 200 when Keystone and the apiserver answer, 503 naming the broken one otherwise', async () => {
    const ok = await request(gw.gateway.server).get('/readyz').expect(200);
    assert.equal(ok.body.ready, true);
    await keystone.stop();
    try {
      const down = await request(gw.gateway.server).get('/readyz').expect(503);
      assert.equal(down.body.checks.keystone.ok, false);
      assert.equal(down.body.checks.k8s.ok, true);
      assert.doesNotMatch(JSON.stringify(down.body), /token|password/i);
    } finally {
      await keystone.start();
    }
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
    const res = await request(gw.gateway.server).get('/nope').expect(404);
    assert.equal(res.body.error, 404);
    assert.doesNotMatch(res.text, /at .*\.js/);
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, refuses new connections, then closes upgraded sessions', async function () {
    this.timeout(10_000);
    const keystone = await new KeystoneDouble().start();
    keystone.register('t');
    // An upstream whose /slow answer takes 400 ms.
    const slow = http.createServer((req, res) => {
      setTimeout(() => res.end('done'), req.url === '/slow' ? 400 : 0);
    });
    slow.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = (slow.address() as { port: number }).port;
    const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: `http://127.0.0.1:${port}`, graceSeconds: 1 });
    try {
      const session = await RawConnection.open(gw.port);
      session.write(requestHead('POST', '/k8s/exec', [['X-Auth-Token', 't'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      await session.until((t) => t.startsWith('HTTP/1.1 101'));

      const inflight = new Promise<string>((resolve, reject) => {
        http.get(`${gw.url}/k8s/slow`, { headers: { 'x-auth-token': 't' }, agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const stopping = gw.stop();
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(RawConnection.open(gw.port), /ECONNREFUSED/);
      assert.equal(await inflight, 'done', 'the in-flight request completed');
      await stopping;
      await session.untilEnded(2000);
      assert.ok(Date.now() - started < 3000);
    } finally {
      slow.close();
      await keystone.stop();
    }
  });
});
