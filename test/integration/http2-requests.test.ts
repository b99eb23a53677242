import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { ApplicationCredentialExchange } from '../../src/auth/application-credentials.js';
import { Authenticator, authenticatorOptions } from '../../src/auth/authenticator.js';
import { Callers } from '../../src/auth/caller.js';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { ServiceTokenProvider } from '../../src/auth/service-token.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { loadK8sClusters } from '../../src/k8s/clusters.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { ByteCount } from '../../src/proxy/byte-count.js';
import { forwardRequest } from '../../src/proxy/forward.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { k8sSteps } from '../../src/routes/k8s.js';
import { parseRequestTarget } from '../../src/routes/path.js';
import { mountOf, type PipelineContext } from '../../src/routes/pipeline.js';
import { Sessions } from '../../src/routes/sessions.js';
import { Changes } from '../helpers/changes.js';
import { selfSignedCert, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { LineCollector, MemoryAudit } from '../helpers/memory-audit.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

interface SeenStream {
  readonly method: string;
  readonly path: string;
  readonly rawHeaders: readonly string[];
  readonly session: http2.ServerHttp2Session;
}

/**
 * An apiserver stand-in speaking HTTP/2 over TLS, and HTTP/1.1 to clients without it (as the apiserver does).
 * /echo answers with what it received; /reset breaks the stream before answering; /refuse refuses it (RFC 9113 8.7:
 * not processed); /silent never answers; /big sends `size` bytes. An upgrade (exec, port-forward) can only come over
 * HTTP/1.1: it is answered 101 and echoes.
 */
class Http2Upstream {
  readonly streams: SeenStream[] = [];
  readonly http1Requests: string[] = [];
  /** Each HTTP/2 stream's close code, by path, once it closed. */
  readonly closed = new Map<string, number>();
  readonly changes = new Changes();
  private readonly server: http2.Http2SecureServer;
  port = 0;

  constructor(dir: string) {
    const { cert, key } = selfSignedCert(dir);
    this.server = http2.createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true }, (req, res) => {
      if (req.httpVersion !== '1.1') return;
      this.http1Requests.push(`${req.method} ${req.url ?? ''}`);
      let length = 0;
      req.on('data', (chunk: Buffer) => (length += chunk.length));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(length === 0 ? '{"via":"http/1.1"}' : JSON.stringify({ via: 'http/1.1', length })));
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      this.http1Requests.push(`UPGRADE ${req.method} ${req.url ?? ''} ${req.headers.upgrade ?? ''}`);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      socket.on('data', (chunk: Buffer) => socket.end(`echo:${chunk.toString('utf8')}`));
      socket.on('error', () => undefined);
    });
    this.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      const seen: SeenStream = { method: String(headers[':method']), path: String(headers[':path']), rawHeaders, session: stream.session as http2.ServerHttp2Session };
      this.streams.push(seen);
      this.changes.notify();
      stream.on('error', () => undefined);
      stream.on('close', () => {
        this.closed.set(seen.path, stream.rstCode);
        this.changes.notify();
      });
      if (seen.path.startsWith('/reset')) return void stream.close(NGHTTP2_INTERNAL_ERROR);
      if (seen.path.startsWith('/refuse') || seen.path.includes('refuse=1')) return void stream.close(NGHTTP2_REFUSED_STREAM);
      if (seen.path.startsWith('/silent')) return;
      if (seen.path.startsWith('/big')) {
        const size = Number(new URL(seen.path, 'https://x').searchParams.get('size'));
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': size });
        stream.end(Buffer.alloc(size, 7));
        return;
      }
      const hash = createHash('sha256');
      let length = 0;
      stream.on('data', (chunk: Buffer) => {
        length += chunk.length;
        hash.update(chunk);
      });
      stream.on('end', () => {
        const body = JSON.stringify({ via: 'h2', method: seen.method, path: seen.path, length, sha256: hash.digest('hex') });
        stream.respond({ ':status': 201, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': 'yes' });
        stream.end(body);
      });
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
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function send(url: string, method: string, body?: Buffer, options: { chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'x-auth-token': 'alice-token' };
    if (body !== undefined && options.chunked !== true) headers['content-length'] = body.length;
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined && options.chunked === true) {
      // Several writes: the body arrives chunked, of no length the gateway knows in advance.
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

/**
 * A gateway in front of an Http2Upstream for the describe block it is called in (its own before and after hooks):
 * alice (project alpha) with `roles`, the gateway's k8s block given by `k8sYaml`. Read its fields inside tests.
 */
function h2World(k8sYaml: string, roles: readonly string[] = ['member']): { upstream: Http2Upstream; gw: TestGateway } {
  const world = {} as { upstream: Http2Upstream; gw: TestGateway };
  let dir: string;
  let keystone: KeystoneDouble;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h2-'));
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: [...roles] });
    world.upstream = await new Http2Upstream(dir).start();
    world.gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: world.upstream.url, ...(k8sYaml !== '' ? { k8sYaml } : {}) });
  });
  after(async () => {
    await world.gw.stop();
    await world.upstream.stop();
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return world;
}

describe('ordinary requests over the shared HTTP/2 connections to an https apiserver', function () {
  const h2 = h2World('  http2Requests: true', ['member', 'reader']);

  it('sends them as streams of one connection with the impersonation intact, and relays status, headers and body', async () => {
    const before = h2.upstream.streams.length;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => send(`${h2.gw.url}/k8s/echo?i=${i}`, 'GET')));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 201);
      assert.equal(a.headers['x-upstream'], 'yes');
      assert.deepEqual(JSON.parse(a.body.toString('utf8')), { via: 'h2', method: 'GET', path: `/echo?i=${i}`, length: 0, sha256: createHash('sha256').digest('hex') });
    }
    const seen = h2.upstream.streams.slice(before);
    assert.equal(seen.length, 10);
    assert.equal(new Set(seen.map((s) => s.session)).size, 1, 'one connection');
    for (const s of seen) {
      const groups = s.rawHeaders.filter((_, i) => i % 2 === 1 && s.rawHeaders[i - 1] === 'impersonate-group');
      assert.ok(groups.length >= 2 && groups.every((g) => !g.includes(', ')), `each group its own field: ${groups.join(' | ')}`);
      assert.equal(s.rawHeaders[s.rawHeaders.indexOf('authorization') + 1], 'Bearer gateway-sa-token');
      assert.ok(!s.rawHeaders.includes('x-auth-token'));
    }
    assert.equal(h2.upstream.http1Requests.length, 0);
  });

  it('streams a client body up whole, with Content-Length and chunked', async () => {
    const body = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < body.length; i += 1) body[i] = (i * 31) % 251;
    const sha256 = createHash('sha256').update(body).digest('hex');
    for (const chunked of [false, true]) {
      const a = await send(`${h2.gw.url}/k8s/echo/post`, 'POST', body, { chunked });
      assert.equal(a.status, 201);
      assert.deepEqual(JSON.parse(a.body.toString('utf8')), { via: 'h2', method: 'POST', path: '/echo/post', length: body.length, sha256 });
    }
  });

  it('relays a large answer whole to a client that reads it', async () => {
    const size = 5 * 1024 * 1024 + 3;
    const a = await send(`${h2.gw.url}/k8s/big?size=${size}`, 'GET');
    assert.equal(a.status, 200);
    assert.equal(a.body.length, size);
    assert.ok(a.body.every((b) => b === 7));
  });

  it('a GET whose stream breaks before any answer is asked again the HTTP/1.1 way', async () => {
    const before = h2.upstream.http1Requests.length;
    const a = await send(`${h2.gw.url}/k8s/reset/get`, 'GET');
    assert.equal(a.status, 200);
    assert.equal(a.body.toString('utf8'), '{"via":"http/1.1"}');
    assert.deepEqual(h2.upstream.http1Requests.slice(before), ['GET /reset/get']);
  });

  it('a POST whose stream breaks before any answer is not sent twice: 502 Status', async () => {
    const before = h2.upstream.http1Requests.length;
    const a = await send(`${h2.gw.url}/k8s/reset/post`, 'POST', Buffer.from('{"kind":"ConfigMap"}'));
    assert.equal(a.status, 502);
    assert.equal((JSON.parse(a.body.toString('utf8')) as { kind: string }).kind, 'Status');
    assert.equal(h2.upstream.http1Requests.length, before, 'the upstream may have acted on it: never resent');
  });

  it('a DELETE the upstream refused unprocessed (REFUSED_STREAM) goes the HTTP/1.1 way; one that broke does not', async () => {
    const before = h2.upstream.http1Requests.length;
    const refused = await send(`${h2.gw.url}/k8s/refuse/delete`, 'DELETE');
    assert.equal(refused.status, 200);
    assert.deepEqual(h2.upstream.http1Requests.slice(before), ['DELETE /refuse/delete']);
    const broken = await send(`${h2.gw.url}/k8s/reset/delete`, 'DELETE');
    assert.equal(broken.status, 502);
    assert.equal(h2.upstream.http1Requests.length, before + 1);
  });
});

describe('ordinary requests over HTTP/2 whose answer does not start', function () {
  // A response-head limit the test can wait out (configured in seconds; fractions are allowed). Its own gateway:
  // on a busy machine a limit this short would also cut off the other tests' answers.
  const h2 = h2World('  http2Requests: true\n  responseHeaderTimeoutSeconds: 0.3');

  it('an answer that does not start within k8s.responseHeaderTimeoutSeconds is a 504 Status, not resent', async () => {
    const before = h2.upstream.http1Requests.length;
    const a = await send(`${h2.gw.url}/k8s/silent`, 'GET');
    assert.equal(a.status, 504);
    assert.match(a.body.toString('utf8'), /did not answer within 0.3 s/);
    assert.equal(h2.upstream.http1Requests.length, before);
  });
});

describe('ordinary requests over HTTP/2: what the pipeline around them must still see', function () {
  // The default response-head limit (minutes): only the client's leaving can end a request here.
  const h2 = h2World('  http2Requests: true');

  it('the audit record counts the bytes both ways (Content-Length and chunked bodies)', async () => {
    const body = Buffer.alloc(200_003, 1);
    for (const chunked of [false, true]) {
      const name = `/k8s/echo/audit-${String(chunked)}`;
      const a = await send(`${h2.gw.url}${name}`, 'POST', body, { chunked });
      assert.equal(a.status, 201);
      const record = await h2.gw.audit.waitFor((r) => r.path.startsWith(name));
      assert.equal(record.bytesIn, body.length);
      assert.equal(record.bytesOut, a.body.length);
    }
  });

  it("a client that leaves before the answer cancels the request's stream at once", async () => {
    const req = http.request(`${h2.gw.url}/k8s/silent/leave`, { method: 'POST', headers: { 'x-auth-token': 'alice-token' } });
    req.on('error', () => undefined);
    req.write('{"kind":');
    await h2.upstream.changes.until(() => h2.upstream.streams.some((s) => s.path === '/silent/leave'));
    req.destroy();
    await h2.upstream.changes.until(() => h2.upstream.closed.has('/silent/leave'));
    assert.equal(h2.upstream.closed.get('/silent/leave'), http2.constants.NGHTTP2_CANCEL);
  });

  it('exec and port-forward upgrades stay HTTP/1.1 (HTTP/2 has no Upgrade)', async () => {
    const c = await RawConnection.open(h2.gw.port);
    c.write(requestHead('POST', '/k8s/api/v1/namespaces/x/pods/p/exec?command=sh', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1'], ['X-Stream-Protocol-Version', 'v4.channel.k8s.io']]));
    await c.until((t) => t.includes('\r\n\r\n'));
    assert.match(c.text(), /^HTTP\/1\.1 101 /);
    c.write('ping');
    assert.ok((await c.untilEnded()).endsWith('echo:ping'));
    assert.deepEqual(h2.upstream.http1Requests, ['UPGRADE POST /api/v1/namespaces/x/pods/p/exec?command=sh SPDY/3.1']);
    assert.ok(!h2.upstream.streams.some((s) => s.path.includes('/exec')));
  });
});

describe('the final check on the HTTP/2 way, with the header step broken on purpose', function () {
  let dir: string;
  let keystone: KeystoneDouble;
  let upstream: Http2Upstream;
  let mount: { url: string; close(): Promise<void> };
  let logs: LineCollector;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h2c-'));
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    upstream = await new Http2Upstream(dir).start();
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'up', cluster: { server: upstream.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'gw', user: { token: 'gateway-sa-token' } }],
      contexts: [{ name: 'up', context: { cluster: 'up', user: 'gw' } }],
      'current-context': 'up',
    }));
    const config = parseConfig(['keystone:', `  authUrl: ${keystone.url}`, '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}', `k8s: {kubeconfig: ${kubeconfig}, http2Requests: true}`].join('\n'), {});
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 2000 });
    const logger = createLogger('debug', (logs = new LineCollector()));
    const authenticator = new Authenticator(client, new ServiceTokenProvider(client, config.keystone.serviceCredentials, logger), authenticatorOptions(config.keystone), logger);
    const context: PipelineContext = { callers: new Callers(authenticator, new ApplicationCredentialExchange(client, logger)), sessions: new Sessions(), logger, audit: new MemoryAudit(), metrics: new Metrics({ processMetrics: false }) };
    const k8s = config.k8s as NonNullable<GatewayConfig['k8s']>;
    const clusters = await loadK8sClusters(k8s, { impersonation: k8s.impersonation, logger: silentLogger() });
    const steps = k8sSteps({ clusters, impersonation: k8s.impersonation, authUrl: config.keystone.authUrl });
    const broken = mountOf({ ...steps, headers: (call, plan) => [...steps.headers(call, plan), 'Impersonate-Group', 'system:masters'] }, context);
    const server = http.createServer((req, res) => broken.handleRequest(req, res, parseRequestTarget(req.url ?? '/')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    mount = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    };
  });

  after(async () => {
    await mount.close();
    await upstream.stop();
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a request that breaks an invariant is answered 500 and never opens a stream', async () => {
    const a = await send(`${mount.url}/k8s/echo/checked`, 'GET');
    assert.equal(a.status, 500);
    assert.equal((JSON.parse(a.body.toString('utf8')) as { kind: string }).kind, 'Status');
    assert.match(logs.lines.filter((l) => l.includes('broke an invariant')).at(-1) ?? '', /Impersonate-\* headers are not exactly/);
    assert.equal(upstream.streams.length, 0);
    assert.equal(upstream.http1Requests.length, 0);
  });
});

describe('forwardRequest over HTTP/2: a checked body the upstream refused unprocessed', function () {
  let dir: string;
  let upstream: Http2Upstream;
  let up: Upstream;
  let server: http.Server;
  let bytes: ByteCount;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h2b-'));
    upstream = await new Http2Upstream(dir).start();
    up = new Upstream(upstream.url, { rejectUnauthorized: false }, undefined, { http2Requests: true });
    server = http.createServer((req, res) => {
      const body = Buffer.from('{"kind":"SelfSubjectAccessReview"}');
      bytes = { in: 0, out: 0 };
      forwardRequest(req, res, { upstream: up, path: req.url ?? '/', headers: ['Host', up.hostHeader, 'Content-Length', String(body.length)], body, bytes, onError: () => res.writeHead(502).end() });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.close();
    up.http2?.close();
    await up.pool.close();
    await up.calls.close();
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is sent once more the HTTP/1.1 way, whole, and counted once', async () => {
    const a = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/review?refuse=1`, 'POST');
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body.toString('utf8')), { via: 'http/1.1', length: 34 });
    assert.deepEqual(upstream.http1Requests, ['POST /review?refuse=1']);
    assert.deepEqual(bytes, { in: 34, out: a.body.length });
  });

  it('is not sent again when its stream broke after the upstream saw it (it may have acted on it)', async () => {
    const before = upstream.http1Requests.length;
    const a = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/reset/review`, 'POST');
    assert.equal(a.status, 502);
    assert.equal(upstream.http1Requests.length, before);
  });
});

describe('ordinary requests to an https apiserver without HTTP/2', function () {
  let dir: string;
  let keystone: KeystoneDouble;
  let server: https.Server;
  let gw: TestGateway;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-h1r-'));
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    const { cert, key } = selfSignedCert(dir);
    server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (chunk: Buffer) => {
        length += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: req.httpVersion, length, sha256: hash.digest('hex') })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, k8sYaml: '  http2Requests: true' });
  });

  after(async () => {
    await gw.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("go the HTTP/1.1 way, the first one's streamed body included (it is read only once an HTTP/2 stream is open)", async () => {
    const body = Buffer.alloc(300_001, 5);
    const sha256 = createHash('sha256').update(body).digest('hex');
    for (let i = 0; i < 2; i += 1) {
      const a = await send(`${gw.url}/k8s/apply?i=${i}`, 'POST', body, { chunked: true });
      assert.equal(a.status, 200, a.body.toString('utf8'));
      assert.deepEqual(JSON.parse(a.body.toString('utf8')), { version: '1.1', length: body.length, sha256 });
    }
  });
});

describe('ordinary requests by default (k8s.http2Requests: false)', function () {
  const h2 = h2World('');

  it('go the HTTP/1.1 way', async () => {
    const a = await send(`${h2.gw.url}/k8s/echo`, 'GET');
    assert.equal(a.body.toString('utf8'), '{"via":"http/1.1"}');
    assert.deepEqual(h2.upstream.http1Requests, ['GET /echo']);
    assert.equal(h2.upstream.streams.length, 0);
  });
});
