import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { http2RequestHeaders } from '../../src/proxy/forward-http2.js';
import { selfSignedCert, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { Changes } from '../helpers/changes.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';


interface SeenStream {
  readonly path: string;
  readonly rawHeaders: readonly string[];
  readonly session: http2.ServerHttp2Session;
  closedAt?: number;
  /** Bytes the upstream could hand to this stream before flow control stopped it. */
  written: number;
  /** /flood: whether it waits for 'drain' now, and how many drains it had. */
  blocked?: boolean;
  drains?: number;
}

/**
 * An apiserver stand-in speaking HTTP/2 over TLS (and HTTP/1.1 for clients without it, as the apiserver does).
 * /watch writes a small event every 20 ms; /flood writes 64 KB chunks for as long as flow control lets it.
 */
class Http2Upstream {
  readonly streams: SeenStream[] = [];
  readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Tells of every stream arriving, closing, or its flood stopping or going on. */
  readonly changes = new Changes();
  private readonly server: http2.Http2SecureServer;
  port = 0;

  constructor(dir: string) {
    const { cert, key } = selfSignedCert(dir);
    this.server = http2.createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true }, (req, res) => {
      // Only HTTP/1.1 requests arrive here: HTTP/2 ones are handled on 'stream' below.
      if (req.httpVersion !== '1.1') return;
      if ((req.url ?? '').startsWith('/watch')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        const timer = setInterval(() => res.write('{"type":"ADDED","via":"http/1.1"}\n'), 20);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"via":"http/1.1"}');
    });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
    });
    this.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      const seen: SeenStream = { path: String(headers[':path']), rawHeaders, session: stream.session as http2.ServerHttp2Session, written: 0 };
      this.streams.push(seen);
      this.changes.notify();
      stream.on('close', () => {
        seen.closedAt = Date.now();
        this.changes.notify();
      });
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200, 'content-type': 'application/json', connection: undefined });
      if (seen.path.startsWith('/flood')) {
        const chunk = Buffer.alloc(64 * 1024, 'x');
        seen.drains = 0;
        const pump = (): void => {
          seen.blocked = false;
          while (!stream.destroyed) {
            const more = stream.write(chunk);
            seen.written += chunk.length;
            if (!more) break;
          }
          if (!stream.destroyed) {
            seen.blocked = true;
            stream.once('drain', () => {
              seen.drains = (seen.drains ?? 0) + 1;
              pump();
            });
          }
          this.changes.notify();
        };
        pump();
        return;
      }
      if (seen.path.startsWith('/short')) {
        stream.end('{"type":"ADDED","n":0}\n{"type":"ADDED","n":1}\n');
        return;
      }
      let n = 0;
      const timer = setInterval(() => stream.write(`{"type":"ADDED","n":${n++}}\n`), 20);
      stream.on('close', () => clearInterval(timer));
    });
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A GET through the gateway that resolves once `until` is in what arrived; the request stays open, and `changes` tells
 * of what arrives after.
 */
function watch(url: string, until: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage; text: () => string; changes: Changes }> {
  const changes = new Changes();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
      let text = '';
      let told = false;
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        changes.notify();
        if (!told && text.includes(until)) {
          told = true;
          resolve({ req, res, text: () => text, changes });
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

describe('watches over shared HTTP/2 connections to an https apiserver', function () {
  let dir: string;
  let keystone: KeystoneDouble;
  let upstream: Http2Upstream;
  let gw: TestGateway;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h2-'));
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member', 'reader'] });
    upstream = await new Http2Upstream(dir).start();
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
  });

  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries many watches as streams of one connection, each with its own impersonation headers intact', async () => {
    const before = upstream.streams.length;
    const watches = await Promise.all(Array.from({ length: 20 }, (_, i) => watch(`${gw.url}/k8s/watch?watch=1&i=${i}`, '"n":2')));
    const seen = upstream.streams.slice(before);
    assert.equal(seen.length, 20, 'every watch reached the upstream as an HTTP/2 stream');
    assert.equal(new Set(seen.map((s) => s.session)).size, 1, 'the 20 watches share one connection');
    for (const s of seen) {
      const groups = s.rawHeaders.filter((_, i) => i % 2 === 1 && (s.rawHeaders[i - 1] as string) === 'impersonate-group');
      assert.ok(groups.length >= 2, `several Impersonate-Group fields: ${groups.join(' | ')}`);
      assert.ok(groups.every((g) => !g.includes(', ')), `each group its own field, none joined: ${groups.join(' | ')}`);
      assert.ok(s.rawHeaders.includes('impersonate-user'));
      assert.equal(s.rawHeaders[s.rawHeaders.indexOf('authorization') + 1], 'Bearer gateway-sa-token');
      assert.ok(!s.rawHeaders.includes('x-auth-token'), 'the Keystone token does not travel upstream');
    }
    const metrics = await gw.gateway.metrics.registry.metrics();
    assert.match(metrics, /^zun_gateway_upstream_http2\{coe="k8s",kind="streams"\} 20$/m);
    assert.match(metrics, /^zun_gateway_upstream_http2\{coe="k8s",kind="connections"\} 1$/m);
    for (const w of watches) w.req.destroy();
  });

  it('cancels the upstream stream at once when the client goes away (invariants.md 30)', async () => {
    const w = await watch(`${gw.url}/k8s/watch?watch=1&leave=1`, '"n":1');
    const seen = upstream.streams.find((s) => s.path.includes('leave=1'));
    assert.ok(seen !== undefined);
    w.req.destroy();
    // Nothing else would end it: the upstream's watch goes on for as long as it is read.
    await upstream.changes.until(() => seen.closedAt !== undefined);
  });

  it('a client that leaves while its token is being checked starts no upstream watch and leaves nothing counted open', async () => {
    keystone.register('slow-token', { user: 'erin', project: { id: 'p-eps', name: 'eps' }, roles: ['member'] });
    const received = keystone.received;
    // Keystone holds its answer until the client has gone and the gateway has seen it go.
    keystone.delayMs = Infinity;
    const before = upstream.streams.length;
    try {
      const gatewaySide = new Promise<http.ServerResponse>((resolve) => gw.gateway.server.once('request', (_req, res: http.ServerResponse) => resolve(res)));
      const req = http.get(`${gw.url}/k8s/watch?watch=1&left=early`, { headers: { 'x-auth-token': 'slow-token' } });
      req.on('error', () => undefined);
      await keystone.changes.until(() => keystone.received > received);
      const res = await gatewaySide;
      req.destroy();
      await new Promise((resolve) => (res.closed ? resolve(undefined) : res.once('close', resolve)));
    } finally {
      keystone.delayMs = 0;
      keystone.answerHeld();
    }
    // A watch of alice's goes up after it, on the same connection: one sent for erin's would have gone first.
    const after = await watch(`${gw.url}/k8s/watch?watch=1&after=early`, '"n":0');
    after.req.destroy();
    assert.deepEqual(upstream.streams.slice(before).map((s) => s.path), ['/watch?watch=1&after=early'], 'a watch went upstream for a client that was gone');
    await upstream.changes.until(() => upstream.streams.every((s) => s.closedAt !== undefined));
    const metrics = await gw.gateway.metrics.registry.metrics();
    assert.match(metrics, /^zun_gateway_open_watches\{coe="k8s"\} 0$/m);
  });

  it('a watcher that stops reading holds back only its own stream, not the others on the connection', async () => {
    // The slow client reads nothing: its stream fills up to its flow-control window and stops there.
    const slow = await new Promise<http.ClientRequest>((resolve, reject) => {
      const req = http.get(`${gw.url}/k8s/flood?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
        res.pause();
        resolve(req);
      });
      req.on('error', reject);
    });
    const flood = upstream.streams.find((s) => s.path.startsWith('/flood'));
    assert.ok(flood !== undefined);
    // Meanwhile another watch on the same connection keeps flowing.
    const other = await watch(`${gw.url}/k8s/watch?watch=1&other=1`, '"n":0');
    const otherSeen = upstream.streams.find((s) => s.path.includes('other=1'));
    assert.equal(otherSeen?.session, flood.session, 'both streams share the connection');
    // Stalled: the flood waits for a drain that does not come while the other watch delivers ten more events. (While
    // the gateway still takes bytes the flood drains again; without flow control it would never stop.)
    const bound = 16 * 1024 * 1024;
    const events = (): number => (other.text().match(/"type":"ADDED"/g) ?? []).length;
    for (;;) {
      await upstream.changes.until(() => flood.blocked === true || flood.written >= bound);
      if (flood.written >= bound) break;
      const drains = flood.drains;
      const seen = events();
      await other.changes.until(() => events() >= seen + 10 || flood.drains !== drains);
      if (flood.drains === drains) break;
    }
    assert.ok(flood.written < bound, `the gateway buffers a bounded amount for a slow client (${flood.written} bytes)`);
    other.req.destroy();
    slow.destroy();
    await upstream.changes.until(() => flood.closedAt !== undefined);
  });

  it('relays the end of a watch the upstream ends, whole', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`${gw.url}/k8s/short?watch=1`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve(text));
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(body, '{"type":"ADDED","n":0}\n{"type":"ADDED","n":1}\n');
    assert.ok(upstream.streams.some((s) => s.path.startsWith('/short')), 'it went as an HTTP/2 stream');
  });

  it('a header list Node\'s HTTP/2 client refuses (User-Agent twice) goes the HTTP/1.1 way, and leaves no stream counted', async () => {
    const streamsCounted = async (): Promise<number> =>
      Number(/^zun_gateway_upstream_http2\{coe="k8s",kind="streams"\} (\d+)$/m.exec(await gw.gateway.metrics.registry.metrics())?.[1] ?? NaN);
    const before = upstream.streams.length;
    const counted = await streamsCounted();
    for (let i = 0; i < 3; i += 1) {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        // Flat, as rawHeaders (Node then adds no Host): two User-Agent lines.
        const headers = ['Host', new URL(gw.url).host, 'x-auth-token', 'alice-token', 'User-Agent', 'a', 'User-Agent', 'b'] as unknown as http.OutgoingHttpHeaders;
        const req = http.get(`${gw.url}/k8s/watch?watch=1&twice=${i}`, { headers }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString('utf8');
            if (text.includes('\n')) {
              req.destroy();
              resolve({ status: res.statusCode ?? 0, body: text });
            }
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', () => undefined);
        });
        req.on('error', reject);
      });
      assert.equal(answer.status, 200, answer.body);
      assert.match(answer.body, /"via":"http\/1\.1"/);
    }
    assert.equal(upstream.streams.length, before, 'no HTTP/2 stream was opened for them');
    assert.ok((await streamsCounted()) <= counted, 'no stream left counted on the shared connections');
  });

  it('translates the header list for HTTP/2: Host as :authority, no connection headers, repeated fields kept apart', async () => {
    const headers = http2RequestHeaders('GET', '/api/v1/pods?watch=1', [
      'Host', 'apiserver:6443', 'Connection', 'keep-alive', 'Impersonate-Group', 'a', 'impersonate-group', 'b', 'Transfer-Encoding', 'chunked', 'Accept', 'application/json',
    ]);
    assert.deepEqual(headers, { ':method': 'GET', ':path': '/api/v1/pods?watch=1', ':authority': 'apiserver:6443', 'impersonate-group': ['a', 'b'], accept: 'application/json' });
  });
});

describe('watches to an https apiserver without HTTP/2', function () {
  let dir: string;
  let keystone: KeystoneDouble;
  let server: https.Server;
  let gw: TestGateway;
  const seen: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h1-'));
    keystone = await KeystoneDouble.withAlice();
    const { cert, key } = selfSignedCert(dir);
    server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      seen.push(`${req.httpVersion} ${req.url ?? ''}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write('{"type":"ADDED"}\n'), 20);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });

  after(async () => {
    await gw.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends them the HTTP/1.1 way, the first one included', async () => {
    for (let i = 0; i < 2; i += 1) {
      const w = await watch(`${gw.url}/k8s/watch?watch=1&i=${i}`, '"ADDED"');
      w.req.destroy();
    }
    assert.deepEqual(seen, ['1.1 /watch?watch=1&i=0', '1.1 /watch?watch=1&i=1']);
  });
});
