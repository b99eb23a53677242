import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream, headerLines } from '../helpers/recording-upstream.js';
import { hostileHeaderLines, headerNames } from '../helpers/hostile-headers.js';

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

/**
 * undici's own clock (its body and header timeouts run on it): `tick` moves it on at once. The gateway in this process
 * forwards with the same undici.
 */
const undiciClock = createRequire(import.meta.url)('undici/lib/util/timers.js') as { tick(ms: number): void };
/** 400 s pass on undici's clock, in steps it checks (its default body and header timeouts are 300 s). */
const fourHundredSeconds = (): void => {
  for (let s = 0; s < 8; s += 1) undiciClock.tick(50_000);
};

describe('/k8s forwarding (in-process gateway, recording upstream, Keystone double)', function () {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let barriers = 0;

  /**
   * The paths that reached the upstream since `before`, read once an ordinary request sent after them has gone through
   * the gateway and reached the upstream (a refused request forwarded after its answer would have arrived by then).
   */
  const forwardedSince = async (before: number, barrierKind: 'request' | 'upgrade' = 'request'): Promise<string[]> => {
    barriers += 1;
    let barrier: string;
    if (barrierKind === 'request') {
      barrier = `/api?barrier=${barriers}`;
      assert.equal((await request(`${gw.url}/k8s${barrier}`, { headers: { 'x-auth-token': 'alice-token' } })).status, 200);
    } else {
      // An upgrade goes on a connection of its own: so does the barrier after a refused one.
      barrier = `/api/v1/namespaces/x/pods/barrier-${barriers}/exec`;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', `/k8s${barrier}`, [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      await c.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));
      c.destroy();
    }
    return upstream.requests.slice(before).map((r) => r.url).filter((url) => url !== barrier);
  };

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

  it('Docker API paths under /k8s (DOCKER_HOST=tcp://<gateway>/k8s) get a 404 saying DOCKER_HOST ends in /docker, not the apiserver\'s "cannot get path"', async () => {
    const before = upstream.requests.length;
    for (const path of ['/k8s/_ping', '/k8s/v1.50/containers/json?all=1', '/k8s/containers/json']) {
      const res = await request(`${gw.url}${path}`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 404, path);
      const status = JSON.parse(res.body.toString());
      assert.equal(status.kind, 'Status');
      assert.match(status.message, /Docker API paths are under \/docker on this gateway: set DOCKER_HOST=tcp:\/\/<gateway host>:<port>\/docker/);
    }
    assert.equal(upstream.requests.length, before, 'forwarded to the apiserver');
  });

  it('a "token" longer than any Keystone issues (4 to 8 KB) is the caller\'s 401, not a Keystone outage: Keystone is never asked', async () => {
    const calls = keystone.validateCalls;
    const metricsBefore = await gw.gateway.metrics.registry.getSingleMetricAsString('zun_gateway_keystone_requests_total');
    for (const size of [4096, 6 * 1024, 8000]) {
      const res = await request(`${gw.url}/k8s/api/v1/namespaces/os-alpha/pods`, { headers: { 'x-auth-token': 'A'.repeat(size) } });
      assert.equal(res.status, 401, `${size} bytes`);
      assert.match(JSON.parse(res.body.toString()).message, /longer than 2048 characters and cannot be a Keystone token/);
    }
    assert.equal(keystone.validateCalls, calls, 'Keystone was asked about a token it could not have issued');
    assert.equal(await gw.gateway.metrics.registry.getSingleMetricAsString('zun_gateway_keystone_requests_total'), metricsBefore);
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

    it('forwards a ~1 MB chunked body byte for byte; method, path and query unchanged', async () => {
      const parts = [randomBytes(512 * 1024), Buffer.from('\r\n0\r\n\r\n\0\0'), randomBytes(512 * 1024), Buffer.from('\r\n'), randomBytes(3)];
      const res = await request(`${gw.url}/k8s/apis/apps/v1/namespaces/x/deployments?fieldManager=a%20b%2Fc&x=%00%0D%0A`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice-token', 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        body: parts,
      });
      assert.equal(res.status, 200);
      const rec = upstream.last();
      assert.equal(rec.method, 'POST');
      assert.equal(rec.url, '/apis/apps/v1/namespaces/x/deployments?fieldManager=a%20b%2Fc&x=%00%0D%0A');
      assert.deepEqual(headerLines(rec.rawHeaders, 'transfer-encoding'), ['chunked']);
      assert.deepEqual(headerLines(rec.rawHeaders, 'content-length'), []);
      assert.ok(rec.body.equals(Buffer.concat(parts)), `upstream got ${rec.body.length} bytes, expected ${Buffer.concat(parts).length}`);
    });

    it('keeps the method of every verb kubectl uses', async () => {
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']) {
        await request(`${gw.url}/k8s/api/v1/namespaces/x/pods/p?dryRun=All`, { method, headers: { 'x-auth-token': 'alice-token' } });
        assert.equal(upstream.last().method, method);
        assert.equal(upstream.last().url, '/api/v1/namespaces/x/pods/p?dryRun=All');
      }
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
    const expectedGroups = [
      'keystone:project:p-alpha',
      'keystone:project:p-alpha:role:a,b',
      'keystone:project:p-alpha:role:member',
      'keystone:project:p-alpha:role:reader',
      'keystone:project:p-alpha:role:system:masters',
    ];

    it('the hostile header table never reaches the upstream, which sees exactly the gateway identity', async () => {
      // The caller's token goes once in X-Auth-Token (a second credential header would be refused as ambiguous);
      // every other hostile header goes in every letter case.
      const raw = ['Host', '127.0.0.1', 'X-Auth-Token', 'alice-token', ...hostileHeaderLines({ skip: (n) => n === 'authorization' || n === 'x-auth-token' || n.startsWith('impersonate-') })];
      const res = await request(`${gw.url}/k8s/api/v1/pods`, { headers: raw });
      assert.equal(res.status, 200, res.body.toString());
      const seen = upstream.last().rawHeaders;
      const values = seen.filter((_, i) => i % 2 === 1);
      assert.deepEqual(values.filter((v) => v.includes('hostile-')), [], `hostile headers reached the upstream: ${JSON.stringify(seen)}`);
      assert.ok(!values.some((v) => v.includes('alice-token')), 'the client token reached the upstream');
      const names = headerNames(seen);
      for (const bad of ['x-auth-token', 'x-subject-token', 'impersonate-uid', 'impersonate-extra-anything', 'impersonate-extra-scopes', 'x-forwarded-for', 'x-forwarded-host', 'forwarded', 'x-real-ip', 'x-remote-user', 'x-remote-group', 'x-remote-extra-x', 'proxy-authorization']) {
        assert.ok(!names.includes(bad), `${bad} reached the upstream`);
      }
      assert.deepEqual(headerLines(seen, 'impersonate-user'), ['keystone:alice']);
      assert.deepEqual(headerLines(seen, 'impersonate-group'), expectedGroups);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-user-id'), ['alice-id']);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-project-id'), ['p-alpha']);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-project-name'), ['alpha']);
      assert.deepEqual(headerLines(seen, 'impersonate-extra-keystone-domain-id'), ['default']);
      assert.deepEqual(headerLines(seen, 'authorization'), ['Bearer gateway-sa-token']);
    });

    for (const name of ['Impersonate-User', 'impersonate-group', 'IMPERSONATE-UID', 'Impersonate-Extra-scopes']) {
      it(`refuses a client ${name} (kubectl --as) with a 403 Status saying so, and forwards nothing`, async () => {
        const before = upstream.requests.length;
        const res = await request(`${gw.url}/k8s/api/v1/pods`, { headers: { 'x-auth-token': 'alice-token', [name]: 'system:admin' } });
        assert.equal(res.status, 403);
        const status = JSON.parse(res.body.toString());
        assert.equal(status.kind, 'Status');
        assert.equal(status.reason, 'Forbidden');
        assert.match(status.message, /kubectl --as, --as-group, --as-uid\) cannot be used through the gateway/);
        assert.deepEqual(await forwardedSince(before), [], 'something was forwarded');
      });
    }

    it("the client's Authorization: Bearer is replaced by the gateway's own", async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { authorization: 'Bearer alice-token' } });
      assert.equal(res.status, 200);
      const seen = upstream.last().rawHeaders;
      assert.deepEqual(headerLines(seen, 'authorization'), ['Bearer gateway-sa-token']);
      assert.ok(!seen.some((v) => v.includes('alice-token')));
    });

    it('sends one Impersonate-Group line per group, prefixed, never comma-joined', async () => {
      await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } });
      assert.deepEqual(headerLines(upstream.last().rawHeaders, 'impersonate-group'), expectedGroups);
    });

    for (const named of ['Impersonate-User', 'authorization', 'X-Remote-User', 'impersonate-group', 'Impersonate-Uid']) {
      it(`refuses Connection: ${named} (hop-by-hop smuggling) with a 400 Status and forwards nothing`, async () => {
        const before = upstream.requests.length;
        const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token', connection: `keep-alive, ${named}` } });
        assert.equal(res.status, 400);
        const status = JSON.parse(res.body.toString());
        assert.equal(status.kind, 'Status');
        assert.equal(status.code, 400);
        assert.equal(status.reason, 'BadRequest');
        assert.match(status.message, /Connection header may not name/);
        assert.deepEqual(await forwardedSince(before), [], 'something was forwarded');
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
      const before = upstream.requests.length;
      // The client would take gzip: the gateway compresses nothing (a compressor holds bytes back; invariants.md 11).
      const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token', 'accept-encoding': 'gzip, deflate, br' } });
      req.on('error', () => undefined);
      try {
        let encoding: string | undefined;
        const got = await new Promise<string>((resolve, reject) => {
          req.on('response', (res) => {
            encoding = res.headers['content-encoding'];
            res.once('data', (d: Buffer) => resolve(d.toString()));
          });
          req.on('error', reject);
        });
        assert.match(got, /"type":"ADDED","n":0/);
        assert.equal(encoding, undefined, 'the watch was compressed');
        const rec = upstream.requests[before];
        assert.ok(rec, 'the watch reached the upstream');
        assert.equal(rec.closedAt, undefined, 'the upstream response was still open when the event arrived');
      } finally {
        req.destroy();
      }
    });

    it('closes the upstream request at once when the client goes away mid-watch', async () => {
      const before = upstream.requests.length;
      const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token' } });
      await new Promise<void>((resolve) => req.on('response', (res) => res.once('data', () => resolve())));
      const rec = upstream.requests[before];
      assert.ok(rec, 'the watch reached the upstream');
      req.destroy();
      await upstream.closed(rec);
      assert.ok(rec.closedEarlyAt !== undefined, 'the upstream watch ended as if finished');
    });

    it('a client that gives up before the upstream answered makes the upstream see its request closed', async () => {
      const before = upstream.requests.length;
      const req = http.get(`${gw.url}/k8s/hang?leaves=1`, { headers: { 'x-auth-token': 'alice-token' } });
      req.on('error', () => undefined);
      const rec = await upstream.arrival((url) => url === '/hang?leaves=1');
      assert.equal(upstream.requests.indexOf(rec), before);
      req.destroy();
      // Nothing else would ever end it: the upstream never answers /hang.
      await upstream.closed(rec);
    });

    it('a watch that goes on for longer than any default timeout is not cut (invariants.md 11)', async () => {
      const chunks: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${gw.url}/k8s/watch?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          res.on('data', (d: Buffer) => {
            chunks.push(d.toString());
            // Once it has begun, 400 s pass on undici's clock; events keep coming after.
            if (chunks.length === 1) fourHundredSeconds();
            if (chunks.length >= 6) {
              req.destroy();
              resolve();
            }
          });
          res.on('aborted', () => reject(new Error(`cut after ${chunks.length} events`)));
        });
        req.on('error', () => undefined);
      });
      assert.ok(chunks.length >= 6);
    });

    it('a watch silent for longer than any default timeout is not cut, and its head reaches the client at once (invariants.md 11)', async () => {
      // The head at once, then nothing (a watch with no events) for 400 s of undici's clock, then the rest. The head
      // reaches the client as soon as the upstream sent it, not with the first event: the test waits for it first.
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.get(`${gw.url}/k8s/held-body?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          assert.equal(res.statusCode, 200);
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
          res.on('error', reject);
          fourHundredSeconds();
          setImmediate(() => upstream.release());
        });
        req.on('error', reject);
      });
      assert.equal(body, 'held-body-done');
    });
  });

  describe('upgrades', () => {
    const exec = '/k8s/api/v1/namespaces/x/pods/p/exec?command=sh&stdin=true';
    const portForward = '/k8s/api/v1/namespaces/x/pods/p/portforward?ports=8080';
    const webSocket = (subprotocol: string): Array<[string, string]> => [
      ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Protocol', subprotocol],
    ];
    // Every protocol kubectl speaks for exec, attach and port-forward (invariants.md 8), passed through untouched.
    for (const [label, method, path, upgrade, extra] of [
      ['SPDY/3.1 over POST (kubectl exec)', 'POST', exec, 'SPDY/3.1', [['X-Stream-Protocol-Version', 'v4.channel.k8s.io']]],
      ['SPDY/3.1 over POST (kubectl port-forward)', 'POST', portForward, 'SPDY/3.1', [['X-Stream-Protocol-Version', 'portforward.k8s.io']]],
      ['WebSocket over GET, v5.channel.k8s.io', 'GET', exec, 'websocket', webSocket('v5.channel.k8s.io')],
      ['WebSocket over GET, v4.channel.k8s.io', 'GET', exec, 'websocket', webSocket('v4.channel.k8s.io')],
      ['WebSocket over GET, SPDY/3.1+portforward.k8s.io (kubectl >= 1.31 port-forward)', 'GET', portForward, 'websocket', webSocket('SPDY/3.1+portforward.k8s.io')],
      ['WebSocket over GET, portforward.k8s.io', 'GET', portForward, 'websocket', webSocket('portforward.k8s.io')],
    ] as ReadonlyArray<readonly [string, string, string, string, ReadonlyArray<readonly [string, string]>]>) {
      it(`${label}: 101, bytes both ways, half-close keeps the other direction open`, async () => {
        const c = await RawConnection.open(gw.port);
        c.write(requestHead(method, path, [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', upgrade], ...extra]));
        await c.until((t) => t.includes('\r\n\r\n'));
        assert.match(c.text(), /^HTTP\/1\.1 101 /);
        assert.match(c.text(), new RegExp(`\r\nUpgrade: ${upgrade.replace(/[./]/g, '\\$&')}\r\n`));
        for (const [name, value] of extra.filter(([n]) => /^(sec-websocket-protocol|x-stream-protocol-version)$/i.test(n))) {
          assert.deepEqual(headerLines(upstream.last().rawHeaders, name.toLowerCase()), [value], `${name} reached the upstream untouched`);
          if (name === 'Sec-WebSocket-Protocol') assert.ok(c.text().includes(`\r\nSec-WebSocket-Protocol: ${value}\r\n`), 'the chosen subprotocol came back');
        }
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

    it('a client that leaves before the upstream answered the handshake makes the upstream see its connection closed', async () => {
      const before = upstream.requests.length;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/hang-upgrade/exec', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      const rec = await upstream.arrival((url) => url === '/hang-upgrade/exec');
      assert.equal(upstream.requests.indexOf(rec), before);
      c.destroy();
      // Nothing else would ever end it: the upstream never answers the handshake.
      await upstream.closed(rec);
    });

    it('an upgraded session has no idle timeout on either side (idle port-forward, invariants.md 11)', async () => {
      // Node's socket timeouts run on its own timers, which no test clock moves: the sockets are asked instead. Both
      // ends of the session as the gateway holds them: the client's (from the listener) and the upstream's (as made).
      const clientSide = new Promise<net.Socket>((resolve) => gw.gateway.server.once('upgrade', (_req, socket: net.Socket) => resolve(socket)));
      const made: net.Socket[] = [];
      const onConnect = (message: unknown): void => {
        made.push((message as { socket: net.Socket }).socket);
      };
      diagnostics_channel.subscribe('net.client.socket', onConnect);
      try {
        const c = await RawConnection.open(gw.port);
        c.write(requestHead('POST', portForward, [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1'], ['X-Stream-Protocol-Version', 'portforward.k8s.io']]));
        await c.until((t) => t.includes('\r\n\r\n'));
        assert.match(c.text(), /^HTTP\/1\.1 101 /);
        c.write('first');
        await c.until((t) => t.includes('echo:first'));
        const upstreamSide = made.find((s) => s.remotePort === upstream.port);
        assert.ok(upstreamSide !== undefined, 'the gateway connected to the upstream');
        for (const [side, socket] of [['client', await clientSide], ['upstream', upstreamSide]] as const) {
          assert.ok(!((socket as net.Socket & { timeout?: number }).timeout! > 0), `the ${side} side times out after ${(socket as net.Socket & { timeout?: number }).timeout} ms`);
        }
        c.write('after');
        await c.until((t) => t.includes('echo:after'));
        c.endWrite();
        assert.ok((await c.untilEnded()).endsWith('bye'));
      } finally {
        diagnostics_channel.unsubscribe('net.client.socket', onConnect);
      }
    });

    it('a client that leaves while its token is being checked starts no upstream exec (invariants.md 30)', async () => {
      keystone.register('exec-leaver-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
      const before = upstream.requests.length;
      const received = keystone.received;
      // Keystone holds its answer until the client has gone and the gateway has seen it go.
      keystone.delayMs = Infinity;
      try {
        const gatewaySide = new Promise<net.Socket>((resolve) => gw.gateway.server.once('upgrade', (_req, socket: net.Socket) => resolve(socket)));
        const c = await RawConnection.open(gw.port);
        c.write(requestHead('POST', exec, [['X-Auth-Token', 'exec-leaver-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
        await keystone.changes.until(() => keystone.received > received);
        const socket = await gatewaySide;
        c.destroy();
        // The listener's sockets are half-open: the gateway sees the client go as an 'end'.
        await new Promise((resolve) => (socket.readableEnded || socket.destroyed ? resolve(undefined) : (socket.once('end', resolve), socket.once('close', resolve))));
      } finally {
        keystone.delayMs = 0;
        keystone.answerHeld();
      }
      assert.deepEqual(await forwardedSince(before, 'upgrade'), [], 'an exec was started upstream for a client that had left');
    });

    it('when the upstream half-closes first, what the client sends afterwards still reaches it', async () => {


      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/upstream-closes-first', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'tcp']]));
      await c.until((t) => t.endsWith('server-done'));
      await c.untilEnded();
      c.write('late-data');
      const rec = upstream.last();
      await upstream.changes.until(() => rec.body.toString().includes('late-data'));
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

    it('bytes sent behind an upgrade the upstream refuses never reach the upstream (a request hidden there would run on the gateway\'s connection)', async () => {
      // A request written into the upstream connection after the refusal would reach a server that keeps connections
      // (Go's does after an ordinary answer) as a request of the gateway's own, its Impersonate-* headers unchecked.
      const hidden = 'POST /api/v1/namespaces/x/configmaps HTTP/1.1\r\nHost: upstream\r\nImpersonate-User: system:admin\r\nContent-Length: 2\r\n\r\n{}';
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/refuse-open/exec', [
        ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'],
        ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'],
      ]) + hidden);
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer');
      const rec = await upstream.arrival((url) => url.startsWith('/refuse-open/'));
      // The gateway closes its upstream connection of a refused upgrade (never reused): every byte it wrote came before.
      await upstream.closed(rec);
      assert.equal(rec.afterAnswer?.toString('latin1'), '');
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
      assert.deepEqual(headerLines(upstream.last().rawHeaders, 'impersonate-user'), ['keystone:alice'], 'authenticated as the subprotocol token');
      assert.deepEqual(headerLines(upstream.last().rawHeaders, 'authorization'), ['Bearer gateway-sa-token']);
      assert.ok(!upstream.last().rawHeaders.some((h) => h.includes(encoded)));
    });

    it('an upgrade whose Connection names an identity header is refused with 400 and never reaches the upstream (invariants.md 2)', async () => {
      const before = upstream.requests.length;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/api/v1/namespaces/x/pods/p/exec', [
        ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade, Impersonate-User'], ['Upgrade', 'SPDY/3.1'], ['Impersonate-User', 'system:admin'],
      ]));
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(text, /Connection header may not name/);
      assert.deepEqual(await forwardedSince(before, 'upgrade'), [], 'the upgrade was forwarded');
    });

    it('an upgrade without a token gets a 401 Status on the socket and never reaches the upstream', async () => {
      const before = upstream.requests.length;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/api/v1/namespaces/x/pods/p/exec', [['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 401 /);
      assert.match(text, /"kind":"Status"/);
      assert.deepEqual(await forwardedSince(before, 'upgrade'), []);
    });
  });

  describe('errors are Kubernetes Status objects', () => {
    /** A Kubernetes Status with this code and reason, a message, and nothing that looks like a stack trace. */
    const assertStatus = (res: Response, code: number, reason: string, message: RegExp) => {
      assert.equal(res.status, code, res.body.toString());
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      const s = JSON.parse(res.body.toString()) as Record<string, unknown>;
      assert.deepEqual(
        { kind: s.kind, apiVersion: s.apiVersion, metadata: s.metadata, status: s.status, code: s.code, reason: s.reason },
        { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, reason },
      );
      assert.equal(typeof s.message, 'string');
      assert.match(s.message as string, message);
      assert.doesNotMatch(res.body.toString(), /\bat [^ ]+ \(|\.(js|ts):\d+|Error:/, 'a stack trace or error class leaked');
    };

    it('401 without a token, with WWW-Authenticate naming Keystone', async () => {
      const res = await request(`${gw.url}/k8s/api`);
      assertStatus(res, 401, 'Unauthorized', /no token/);
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}"`);
    });

    it('401 for a token Keystone does not know', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'gAAAAA-unknown' } });
      assertStatus(res, 401, 'Unauthorized', /token is not valid/);
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}"`);
    });

    it('403 for an unscoped token, saying how to get a project-scoped one', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'unscoped-token' } });
      assertStatus(res, 403, 'Forbidden', /unscoped.*project-scoped token.*--os-project-name/);
      assert.equal(res.headers['www-authenticate'], undefined);
    });

    it('403 and nothing forwarded when Keystone names no user, or one no header can carry (fails closed: invariants.md 3)', async () => {
      keystone.register('nameless-token', { user: '', project: { id: 'p-alpha', name: 'alpha' } });
      keystone.register('crlf-token', { user: 'eve\r\nImpersonate-User: admin', project: { id: 'p-alpha', name: 'alpha' } });
      for (const token of ['nameless-token', 'crlf-token']) {
        const before = upstream.requests.length;
        const res = await request(`${gw.url}/k8s/api/v1/namespaces/x/pods`, { headers: { 'x-auth-token': token } });
        assertStatus(res, 403, 'Forbidden', /user/);
        assert.equal(upstream.requests.length, before, `${token}: the upstream was reached`);
      }
    });

    it('400 for two different tokens', async () => {
      const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token', authorization: 'Bearer other' } });
      assertStatus(res, 400, 'BadRequest', /different tokens/);
    });

    it('502 when the upstream is unreachable', async () => {
      const dead = await new RecordingUpstream().start();
      const url = dead.url;
      await dead.stop();
      const other = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: url });
      try {
        const res = await request(`${other.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } });
        assertStatus(res, 502, 'InternalError', /upstream unreachable/);
      } finally {
        await other.stop();
      }
    });

    it('502 Status when the upstream resets the connection before answering', async () => {
      const res = await request(`${gw.url}/k8s/reset`, { headers: { 'x-auth-token': 'alice-token' } });
      assertStatus(res, 502, 'InternalError', /upstream/);
    });

    it('503 when Keystone is down for a new token, while a cached token keeps working', async () => {
      keystone.register('cached-token', { user: 'carol', project: { id: 'p-alpha', name: 'alpha' }, roles: ['reader'] });
      keystone.register('new-token', { user: 'dave', project: { id: 'p-alpha', name: 'alpha' } });
      assert.equal((await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'cached-token' } })).status, 200);
      await keystone.stop();
      try {
        const res = await request(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'new-token' } });
        assertStatus(res, 503, 'ServiceUnavailable', /Keystone is unavailable/);
        assert.equal(res.headers['www-authenticate'], undefined, 'an outage must not look like a bad token');
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
