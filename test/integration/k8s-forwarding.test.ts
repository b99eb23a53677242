import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream, headerLines } from '../helpers/recording-upstream.js';

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders | string[]; body?: Buffer | Buffer[] } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers as http.OutgoingHttpHeaders }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (Array.isArray(options.body)) {
      for (const part of options.body) req.write(part);
      req.end();
    } else req.end(options.body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('/k8s forwarding (in-process gateway, recording upstream, Keystone double)', function () {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    upstream = await new RecordingUpstream().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member', 'reader', 'system:masters', 'a,b'] });
    keystone.register('unscoped-token', { user: 'alice', project: null });
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
  });

  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
  });

  describe('bytes', () => {
    it('forwards a binary body byte for byte with Content-Length; method, path and query unchanged; /k8s stripped', async () => {
      const body = Buffer.concat([randomBytes(1 << 20), Buffer.from('\r\n\0\r\n0\r\n\r\n')]);
      const res = await request(`${gw.url}/k8s/api/v1/namespaces/x/configmaps?fieldSelector=a%3Db%2Cc&dryRun=All`, {
        method: 'PUT',
        headers: { 'x-auth-token': 'alice-token', 'content-type': 'application/octet-stream', 'content-length': body.length },
        body,
      });
      assert.equal(res.status, 200);
      const rec = upstream.last();
      assert.equal(rec.method, 'PUT');
      assert.equal(rec.url, '/api/v1/namespaces/x/configmaps?fieldSelector=a%3Db%2Cc&dryRun=All');
      assert.ok(rec.body.equals(body), 'the body reached the upstream byte for byte');
    });

    it('forwards a chunked body byte for byte', async () => {
      const parts = [randomBytes(70_000), Buffer.from('\r\n0\r\n\r\n'), randomBytes(3)];
      const res = await request(`${gw.url}/k8s/apis/apps/v1/deployments`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice-token', 'transfer-encoding': 'chunked' },
        body: parts,
      });
      assert.equal(res.status, 200);
      assert.ok(upstream.last().body.equals(Buffer.concat(parts)));
    });

    it('relays the upstream status, headers and body', async () => {
      const res = await request(`${gw.url}/k8s/version`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-upstream'], 'recording');
      assert.equal(JSON.parse(res.body.toString()).url, '/version');
    });

    it('/k8s alone goes to the upstream root', async () => {
      await request(`${gw.url}/k8s`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(upstream.last().url, '/');
    });
  });

  describe('identity headers', () => {
    const hostile: Array<[string, string]> = [
      ['Authorization', 'Bearer alice-token'],
      ['X-Auth-Token', 'alice-token'],
      ['Impersonate-User', 'admin'],
      ['impersonate-user', 'admin2'],
      ['IMPERSONATE-GROUP', 'system:masters'],
      ['Impersonate-Group', 'system:masters'],
      ['impersonate-uid', '0'],
      ['Impersonate-Uid', '0'],
      ['Impersonate-Extra-scopes', 'all'],
      ['impersonate-extra-keystone-project-id', 'p-beta'],
      ['IMPERSONATE-EXTRA-keystone-user-id', 'bob-id'],
      ['X-Forwarded-For', '10.0.0.1'],
      ['x-forwarded-for', '10.0.0.2'],
      ['X-Forwarded-Host', 'evil'],
      ['Forwarded', 'for=10.0.0.3'],
      ['X-Remote-User', 'system:admin'],
      ['x-remote-user', 'system:admin'],
      ['X-Remote-Group', 'system:masters'],
      ['x-REMOTE-group', 'system:masters'],
      ['X-Remote-Extra-Scopes', 'all'],
      ['X-Real-IP', '10.0.0.4'],
    ];

    it('no client identity, impersonation, forwarding or remote-user header reaches the upstream, in any case', async () => {
      // The token is sent once in X-Auth-Token; the hostile table repeats it, so build the raw header list by hand.
      const raw = ['Host', '127.0.0.1', 'X-Auth-Token', 'alice-token'];
      for (const [k, v] of hostile) if (k.toLowerCase() !== 'x-auth-token' && k.toLowerCase() !== 'authorization') raw.push(k, v);
      const res = await request(`${gw.url}/k8s/api/v1/pods`, { headers: raw });
      assert.equal(res.status, 200);
      const seen = upstream.last().rawHeaders;
      const names = seen.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      for (const bad of ['x-auth-token', 'x-forwarded-for', 'x-forwarded-host', 'forwarded', 'x-remote-user', 'x-remote-group', 'x-remote-extra-scopes', 'x-real-ip', 'impersonate-uid', 'impersonate-extra-scopes']) {
        assert.ok(!names.includes(bad), `${bad} reached the upstream`);
      }
      assert.deepEqual(headerLines(seen, 'impersonate-user'), ['keystone:alice']);
      assert.deepEqual(headerLines(seen, 'authorization'), ['Bearer gateway-sa-token']);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-project-id'), ['p-alpha']);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-user-id'), ['alice-id']);
      assert.ok(!seen.includes('system:masters') || headerLines(seen, 'impersonate-group').every((g) => g.startsWith('keystone:')));
    });

    it('sends one Impersonate-Group line per group, prefixed, never comma-joined', async () => {
      await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.deepEqual(headerLines(upstream.last().rawHeaders, 'impersonate-group'), [
        'keystone:project:p-alpha',
        'keystone:project:p-alpha:role:a,b',
        'keystone:project:p-alpha:role:member',
        'keystone:project:p-alpha:role:reader',
        'keystone:project:p-alpha:role:system:masters',
      ]);
    });

    for (const named of ['Impersonate-User', 'authorization', 'X-Remote-User', 'impersonate-group']) {
      it(`refuses Connection: ${named} (hop-by-hop smuggling) with a 400 Status and forwards nothing`, async () => {
        const before = upstream.requests.length;
        const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token', connection: `keep-alive, ${named}` } });
        assert.equal(res.status, 400);
        const status = JSON.parse(res.body.toString());
        assert.equal(status.kind, 'Status');
        assert.match(status.message, /Connection header may not name/);
        assert.equal(upstream.requests.length, before);
      });
    }

    it('removes a header the client names in Connection (ordinary hop-by-hop rule)', async () => {
      await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token', connection: 'x-private', 'x-private': '1', 'x-kept': '2' } });
      const seen = upstream.last().rawHeaders;
      assert.deepEqual(headerLines(seen, 'x-private'), []);
      assert.deepEqual(headerLines(seen, 'x-kept'), ['2']);
    });
  });

  describe('streams', () => {
    it('delivers the first watch event before the upstream ends the response', async () => {
      const got = await new Promise<string>((resolve, reject) => {
        const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          res.once('data', (d: Buffer) => {
            resolve(d.toString());
            req.destroy();
          });
        });
        req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      });
      assert.match(got, /"type":"ADDED"/);
    });

    it('closes the upstream request at once when the client goes away mid-watch', async () => {
      const before = upstream.requests.length;
      const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token' } });
      await new Promise<void>((resolve) => req.on('response', (res) => res.once('data', () => resolve())));
      const rec = upstream.requests[before];
      assert.ok(rec, 'the watch reached the upstream');
      const left = Date.now();
      req.destroy();
      for (let i = 0; i < 50 && rec.closedEarlyAt === undefined; i += 1) await sleep(20);
      assert.ok(rec.closedEarlyAt !== undefined, 'the upstream still holds the watch');
      assert.ok(rec.closedEarlyAt - left < 1000);
    });

    it('a response that never ends is not cut by any gateway timeout within the test window', async () => {
      const chunks: string[] = [];
      await new Promise<void>((resolve) => {
        const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          res.on('data', (d: Buffer) => {
            chunks.push(d.toString());
            if (chunks.length >= 12) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', () => undefined);
      });
      assert.ok(chunks.length >= 12);
    });
  });

  describe('upgrades', () => {
    for (const [label, method, upgrade, extra] of [
      ['SPDY/3.1 over POST (kubectl exec)', 'POST', 'SPDY/3.1', [['X-Stream-Protocol-Version', 'v4.channel.k8s.io']]],
      ['WebSocket over GET', 'GET', 'websocket', [['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Protocol', 'v5.channel.k8s.io']]],
    ] as const) {
      it(`${label}: 101, bytes both ways, half-close keeps the other direction open`, async () => {
        const c = await RawConnection.open(gw.port);
        c.write(requestHead(method, '/k8s/api/v1/namespaces/x/pods/p/exec?command=sh&stdin=true', [
          ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', upgrade], ...extra,
        ]));
        await c.until((t) => t.includes('\r\n\r\n'));
        assert.match(c.text(), /^HTTP\/1\.1 101 /);
        c.write('ping');
        await c.until((t) => t.includes('echo:ping'));
        c.endWrite();
        const all = await c.untilEnded();
        assert.ok(all.endsWith('bye'), 'the upstream answer after our half-close arrived');
        const rec = upstream.last();
        assert.equal(rec.upgraded, true);
        assert.equal(rec.method, method);
        assert.deepEqual(headerLines(rec.rawHeaders, 'impersonate-user'), ['keystone:alice']);
        assert.deepEqual(headerLines(rec.rawHeaders, 'x-auth-token'), []);
      });
    }

    it('when the upstream half-closes first, what the client sends afterwards still reaches it', async () => {
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/upstream-closes-first', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'tcp']]));
      await c.until((t) => t.endsWith('server-done'));
      await c.untilEnded();
      c.write('late-data');
      const rec = upstream.last();
      for (let i = 0; i < 50 && !rec.body.toString().includes('late-data'); i += 1) await sleep(20);
      assert.equal(rec.body.toString(), 'late-data');
      c.destroy();
    });

    it('over the TLS listener too: half-close keeps the other direction open (invariants.md 29)', async function () {
      this.timeout(10_000);
      const tlsGw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, tls: true });
      try {
        const c = await RawConnection.open(tlsGw.port, true);
        c.write(requestHead('POST', '/k8s/api/v1/namespaces/x/pods/p/exec?stdin=true', [
          ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1'],
        ]));
        await c.until((t) => t.includes('\r\n\r\n'));
        assert.match(c.text(), /^HTTP\/1\.1 101 /);
        c.write('over-tls');
        await c.until((t) => t.includes('echo:over-tls'));
        c.endWrite();
        const all = await c.untilEnded();
        assert.ok(all.endsWith('bye'), `after the half-close: ${JSON.stringify(all.slice(-40))}`);
      } finally {
        await tlsGw.stop();
      }
    });

    it('a refused WebSocket handshake reaches the client unchanged, so kubectl can fall back to SPDY', async () => {
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/refuse/exec', [
        ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'],
        ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'],
      ]));
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(text, /X-Refused-By: upstream\r\n/);
      assert.ok(text.endsWith('{"kind":"Status","code":400,"message":"upgrade request required"}'));
    });

    it('accepts the bearer token in the WebSocket subprotocol and strips it before the upstream', async () => {
      const encoded = Buffer.from('alice-token').toString('base64url');
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/api/v1/namespaces/x/pods/p/exec', [
        ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'],
        ['Sec-WebSocket-Protocol', `v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.${encoded}, v4.channel.k8s.io`],
      ]));
      await c.until((t) => t.includes('\r\n\r\n'));
      assert.match(c.text(), /^HTTP\/1\.1 101 /);
      assert.match(c.text(), /Sec-WebSocket-Protocol: v5\.channel\.k8s\.io/);
      c.destroy();
      const protocols = headerLines(upstream.last().rawHeaders, 'sec-websocket-protocol');
      assert.deepEqual(protocols, ['v5.channel.k8s.io, v4.channel.k8s.io']);
      assert.ok(!upstream.last().rawHeaders.some((h) => h.includes(encoded)));
    });

    it('an upgrade without a token gets a 401 Status on the socket and never reaches the upstream', async () => {
      const before = upstream.requests.length;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/api/v1/namespaces/x/pods/p/exec', [['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 401 /);
      assert.match(text, /"kind":"Status"/);
      assert.equal(upstream.requests.length, before);
    });
  });

  describe('errors are Kubernetes Status objects', () => {
    const status = (res: Response) => JSON.parse(res.body.toString()) as { kind: string; code: number; reason: string; message: string };

    it('401 without a token, with WWW-Authenticate naming Keystone', async () => {
      const res = await request(`${gw.url}/k8s/api`);
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}"`);
      const s = status(res);
      assert.deepEqual([s.kind, s.code, s.reason], ['Status', 401, 'Unauthorized']);
      assert.match(s.message, /no token/);
    });

    it('401 for a token Keystone does not know', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'gAAAAA-unknown' } });
      assert.equal(res.status, 401);
      assert.match(status(res).message, /token is not valid/);
    });

    it('403 for an unscoped token, saying how to get a project-scoped one', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'unscoped-token' } });
      assert.equal(res.status, 403);
      assert.equal(status(res).reason, 'Forbidden');
      assert.match(status(res).message, /unscoped.*--os-project-name/);
    });

    it('400 for two different tokens', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token', authorization: 'Bearer other' } });
      assert.equal(res.status, 400);
      assert.equal(status(res).kind, 'Status');
    });

    it('502 when the upstream is unreachable', async () => {
      const dead = await new RecordingUpstream().start();
      const url = dead.url;
      await dead.stop();
      const other = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: url });
      try {
        const res = await request(`${other.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } });
        assert.equal(res.status, 502);
        assert.equal(status(res).kind, 'Status');
        assert.match(status(res).message, /upstream unreachable/);
        assert.doesNotMatch(res.body.toString(), /at .*\.js:\d+/);
      } finally {
        await other.stop();
      }
    });

    it('503 when Keystone is down for a new token, while a cached token keeps working', async () => {
      keystone.register('cached-token', { user: 'carol', project: { id: 'p-alpha', name: 'alpha' }, roles: ['reader'] });
      keystone.register('new-token', { user: 'dave', project: { id: 'p-alpha', name: 'alpha' } });
      assert.equal((await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'cached-token' } })).status, 200);
      await keystone.stop();
      try {
        const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'new-token' } });
        assert.equal(res.status, 503);
        assert.equal(status(res).reason, 'ServiceUnavailable');
        assert.match(status(res).message, /Keystone is unavailable/);
        assert.equal((await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'cached-token' } })).status, 200);
      } finally {
        await keystone.start();
      }
      assert.equal((await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'new-token' } })).status, 200, 'recovery without restart');
    });
  });

  describe('paths', () => {
    for (const bad of ['/k8s/api/../../docker', '/k8s/api/%2e%2e/x', '/k8s/api%2fv1', '/k8s//api', '/k8s/api\\v1', '/k8s/%c0%ae%c0%ae/x']) {
      it(`refuses ${bad} with 400 before authentication or forwarding`, async () => {
        const before = upstream.requests.length;
        const c = await RawConnection.open(gw.port);
        c.write(requestHead('GET', bad, [['X-Auth-Token', 'alice-token'], ['Connection', 'close']]));
        const text = await c.untilEnded();
        assert.match(text, /^HTTP\/1\.1 400 /);
        assert.equal(upstream.requests.length, before);
      });
    }

    it('/k8sfoo is not the k8s endpoint', async () => {
      const res = await request(`${gw.url}/k8sfoo/api`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 404);
      assert.match(res.body.toString(), /no such endpoint/);
    });
  });
});
