import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Changes } from './changes.js';
import { headerLines } from './hostile-headers.js';

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  body: Buffer;
  /** Body bytes received so far (`body` is filled in at its end). */
  received?: number;
  /** Set when the upstream saw the request's connection or response close before it finished. */
  closedEarlyAt?: number;
  /** When the upstream's side of the exchange closed, however it ended. */
  closedAt?: number;
  upgraded?: boolean;
  /** `/refuse-open` upgrades: every byte that reached the upstream after its refusal, on the same connection. */
  afterAnswer?: Buffer;
}

export { headerLines };

/**
 * A fake apiserver that records exactly what reached it (method, url, rawHeaders, body bytes), for header and
 * streaming assertions. Paths:
 *   /watch       chunked events every 50 ms until `endWatches()`; records when the client side went away
 *   /hang        never answers
 *   /held        answers 200 `held-done` when the test calls `release()`
 *   /held-body   sends the 200 head at once, the body `held-body-done` when the test calls `release()`
 *   /reset       destroys the connection
 *   /healthz     answers `healthzStatus` (200 unless set)
 *   /version     the answer below with `gitVersion` (the admission webhook's subPath rule reads it)
 *   GET /api/v1/namespaces/<ns> for a namespace in `namespaceProjects`: that Namespace with its ownership label
 *   anything else: 200 JSON {ok: true}
 * Upgrades: `/hang-upgrade...` never answers the handshake (records when the connection closed); `/refuse...` answers an ordinary 400 (as a 1.20 apiserver does to WebSocket v5 exec) and closes; `/refuse-open...` answers 403
 * and keeps the connection, recording whatever arrives on it after (a server that would read it as a next request); anything else
 * answers 101, echoes each chunk back as `echo:<chunk>`, and on the client's half-close writes `bye` and ends;
 * `/upstream-closes-first` answers 101, writes `server-done`, half-closes, and records what the client sends after.
 * `changes` tells of every request arriving, every body received and every close, for tests to wait on.
 */
export class RecordingUpstream {
  readonly requests: Recorded[] = [];
  /** What `/healthz` answers (the gateway's readiness probe of the apiserver). */
  healthzStatus = 200;
  /** What GET /version reports. */
  gitVersion = 'v1.20.2';
  /** Namespaces GET /api/v1/namespaces/<name> answers, with their project (zun-gateway.openstack.org/project-id). */
  readonly namespaceProjects = new Map<string, string>();
  readonly changes = new Changes();
  private readonly held: Array<() => void> = [];
  private readonly server: http.Server;
  private readonly watches = new Set<http.ServerResponse>();
  private readonly sockets = new Set<Duplex>();
  port = 0;

  constructor() {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  last(): Recorded {
    const r = this.requests[this.requests.length - 1];
    if (r === undefined) throw new Error('the upstream received no request');
    return r;
  }

  /** Waits for a request whose URL `matches` (the first to arrive, or one already here). */
  async arrival(matches: (url: string) => boolean): Promise<Recorded> {
    await this.changes.until(() => this.requests.some((r) => matches(r.url)));
    return this.requests.find((r) => matches(r.url)) as Recorded;
  }

  /** Waits until the upstream's side of `rec` has closed. */
  async closed(rec: Recorded): Promise<void> {
    await this.changes.until(() => rec.closedAt !== undefined);
  }

  /** Answers every /held and /held-body request waiting so far. */
  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  endWatches(): void {
    for (const w of this.watches) w.end('{"type":"END"}\n');
    this.watches.clear();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], body: Buffer.alloc(0) };
    this.requests.push(rec);
    this.changes.notify();
    const chunks: Buffer[] = [];
    rec.received = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      rec.received = (rec.received ?? 0) + c.length;
      this.changes.notify();
    });
    res.on('close', () => {
      rec.closedAt = Date.now();
      if (!res.writableFinished) rec.closedEarlyAt = rec.closedAt;
      this.changes.notify();
    });
    req.on('end', () => {
      rec.body = Buffer.concat(chunks);
      this.changes.notify();
      const path = rec.url.split('?')[0];
      if (path === '/hang') return;
      if (path === '/held') {
        this.held.push(() => res.end('held-done'));
        return;
      }
      if (path === '/held-body') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        this.held.push(() => res.end('held-body-done'));
        return;
      }
      if (path === '/healthz' && this.healthzStatus !== 200) {
        res.writeHead(this.healthzStatus, { 'content-type': 'application/json' });
        res.end('{"kind":"Status"}');
        return;
      }
      const namespace = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path ?? '')?.[1];
      const owner = namespace === undefined ? undefined : this.namespaceProjects.get(namespace);
      if (rec.method === 'GET' && owner !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'zun-gateway.openstack.org/project-id': owner } } }));
        return;
      }
      if (path === '/reset') {
        req.socket.destroy();
        return;
      }
      if (path === '/watch') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        this.watches.add(res);
        let n = 0;
        const timer = setInterval(() => {
          if (res.destroyed || res.writableEnded) return clearInterval(timer);
          res.write(`{"type":"ADDED","n":${n++}}\n`);
        }, 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      const body = JSON.stringify({ ok: true, method: rec.method, url: rec.url, bytes: rec.body.length, ...(path === '/version' ? { gitVersion: this.gitVersion } : {}) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': 'recording' });
      res.end(body);
    });
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], body: head, upgraded: false };
    this.requests.push(rec);
    this.changes.notify();
    if ((req.url ?? '').startsWith('/refuse-open')) {
      rec.afterAnswer = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        rec.afterAnswer = Buffer.concat([rec.afterAnswer ?? Buffer.alloc(0), d]);
        this.changes.notify();
      });
      const ended = (): void => {
        rec.closedAt ??= Date.now();
        this.changes.notify();
      };
      socket.on('end', ended);
      socket.on('close', ended);
      socket.on('error', () => socket.destroy());
      const body = '{"kind":"Status","code":403,"message":"forbidden"}';
      socket.write(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    if ((req.url ?? '').startsWith('/refuse')) {
      const body = '{"kind":"Status","code":400,"message":"upgrade request required"}';
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-Refused-By: upstream\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      return;
    }
    // The gateway's side ending (FIN) counts as closing: a server socket stays half-open and would never 'close'.
    const closed = (): void => {
      rec.closedAt ??= Date.now();
      this.changes.notify();
    };
    socket.on('end', closed);
    socket.on('close', closed);
    socket.on('error', () => socket.destroy());
    if ((req.url ?? '').startsWith('/hang-upgrade')) return; // never answers the handshake
    rec.upgraded = true;
    (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
    const protocol = headerLines(req.rawHeaders, 'sec-websocket-protocol')[0]?.split(',')[0]?.trim();
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
        '\r\n',
    );
    if ((req.url ?? '').startsWith('/upstream-closes-first')) {
      // The upstream finishes its output first and keeps reading what the client still sends.
      socket.end('server-done');
      socket.on('data', (d: Buffer) => {
        rec.body = Buffer.concat([rec.body, d]);
        this.changes.notify();
      });
      return;
    }
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString('utf8')}`));
    socket.on('end', () => socket.end('bye'));
  }
}
