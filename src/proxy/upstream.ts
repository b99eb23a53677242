import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { Pool } from 'undici';
import { CONNECT_TIMEOUT_MS } from './errors.js';
import { Http2Sessions } from './http2-sessions.js';

export interface UpstreamTls {
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  readonly rejectUnauthorized: boolean;
  readonly servername?: string | undefined;
}

export interface UpstreamOptions {
  /** Long-lived requests as streams on shared HTTP/2 connections (TLS upstreams only). */
  readonly http2LongLived?: boolean;
  /** Ordinary requests as streams on the same connections (TLS upstreams only). */
  readonly http2Requests?: boolean;
  /**
   * How long an ordinary request may wait for the upstream's response head once it is sent (0: forever). Never
   * applied to watches, follows and upgrades, nor to requests whose body the client is still streaming.
   */
  readonly responseHeaderTimeoutMs?: number;
  /** How long an idle kept-alive connection of the gateway's own calls stays open (default: undici's, 4 s). */
  readonly idleConnectionMs?: number;
}

/** The largest answer the gateway reads for one of its own calls (an engine's container list, an inspect). */
const MAX_OWN_CALL_BYTES = 16 * 1024 * 1024;

/**
 * Where a COE's requests go: scheme, host, port, a base path, and the connection pools. Ordinary requests share a
 * keep-alive pool; upgrades get connections of their own because they leave the pool for good once upgraded.
 */
export class Upstream {
  readonly url: URL;
  readonly basePath: string;
  readonly hostHeader: string;
  /** Ordinary proxied requests: undici's pool (cheaper per request than node:http's client; docs/performance.md). */
  readonly pool: Pool;
  /** Shared HTTP/2 connections, when asked for and the upstream is TLS (forward.ts). */
  readonly http2: Http2Sessions | undefined;
  /** Which requests take `http2`: long-lived ones (watches, follows), ordinary ones. */
  readonly http2For: { readonly longLived: boolean; readonly ordinary: boolean };
  /** See UpstreamOptions. */
  readonly responseHeaderTimeoutMs: number;
  /** `scheme://host:port` of the pool. */
  readonly origin: string;
  /**
   * The gateway's own calls (health checks, Docker ownership lookups): a pool of its own, so their answers can be
   * bounded (maxResponseSize) without bounding what is proxied.
   */
  readonly calls: Pool;
  readonly upgradeAgent: http.Agent;
  readonly isTls: boolean;
  /** Set when the upstream listens on a unix socket (the URL then only names the Host header). */
  readonly socketPath: string | undefined;

  constructor(server: string, tls_?: UpstreamTls, socketPath?: string, options: UpstreamOptions = {}) {
    this.url = new URL(server);
    this.isTls = this.url.protocol === 'https:';
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    this.hostHeader = this.url.host;
    // One secure context for every connection: given `ca`/`cert`/`key` instead, Node builds a new context (parsing
    // the CA bundle, loading the key) for each connection, which dominated the cost of opening a watch or an exec.
    const secure = this.isTls
      ? {
          secureContext: tls.createSecureContext({
            ...(tls_?.ca !== undefined ? { ca: tls_.ca } : {}),
            ...(tls_?.cert !== undefined ? { cert: tls_.cert } : {}),
            ...(tls_?.key !== undefined ? { key: tls_.key } : {}),
          }),
          ...(tls_?.servername !== undefined ? { servername: tls_.servername } : {}),
          rejectUnauthorized: tls_?.rejectUnauthorized ?? true,
        }
      : undefined;
    this.upgradeAgent = secure !== undefined ? new https.Agent({ keepAlive: false, ...secure }) : new http.Agent({ keepAlive: false });
    this.socketPath = socketPath;
    this.origin = this.url.origin;
    const where = {
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(secure !== undefined ? { connect: secure } : {}),
    };
    // Watches, `logs -f` and slow LISTs live as long as both ends want (invariants.md 11).
    this.pool = new Pool(this.origin, { ...where, headersTimeout: 0, bodyTimeout: 0 });
    const idle = options.idleConnectionMs !== undefined ? { keepAliveTimeout: options.idleConnectionMs, keepAliveMaxTimeout: options.idleConnectionMs } : {};
    this.calls = new Pool(this.origin, { ...where, ...idle, maxResponseSize: MAX_OWN_CALL_BYTES });
    this.responseHeaderTimeoutMs = options.responseHeaderTimeoutMs ?? 0;
    const h2 = secure !== undefined && socketPath === undefined;
    this.http2For = { longLived: h2 && options.http2LongLived === true, ordinary: h2 && options.http2Requests === true };
    this.http2 = secure !== undefined && (this.http2For.longLived || this.http2For.ordinary) ? new Http2Sessions(this.origin, secure) : undefined;
  }

  /** node:http request options for an upgrade to a path relative to the upstream's base path. */
  upgradeOptions(method: string, path: string, headers: string[]): http.RequestOptions {
    return {
      protocol: this.url.protocol,
      hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port || (this.isTls ? 443 : 80),
      ...(this.socketPath !== undefined ? { socketPath: this.socketPath } : {}),
      method,
      path: this.basePath + path,
      headers,
      agent: this.upgradeAgent,
      setHost: false,
    };
  }

  request(options: http.RequestOptions): http.ClientRequest {
    return (this.isTls ? https : http).request(options);
  }

  close(): void {
    void this.pool.destroy();
    this.http2?.close();
    void this.calls.destroy();
    this.upgradeAgent.destroy();
  }
}
