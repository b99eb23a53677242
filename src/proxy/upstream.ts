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
  /**
   * How long an ordinary request may wait for the upstream's response head once it is sent (0: forever). Never
   * applied to watches, follows and upgrades, nor to requests whose body the client is still streaming.
   */
  readonly responseHeaderTimeoutMs?: number;
  /** How long a kept-alive connection of the gateway's own calls may sit unused before it is closed. */
  readonly idleConnectionMs?: number;
}

/**
 * Idle keep-alive connections of the gateway's own calls close after this long, as undici's pool closes its own
 * (4 s): node:http's Agent otherwise keeps up to maxFreeSockets of them open for good, and a burst of Docker
 * ownership lookups left hundreds of connections to dockerd open (test/integration/client-aborts.test.ts).
 */
export const IDLE_CONNECTION_MS = 5_000;

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
  /** Shared HTTP/2 connections for long-lived requests, when asked for and the upstream is TLS (forward.ts). */
  readonly http2: Http2Sessions | undefined;
  /** See UpstreamOptions. */
  readonly responseHeaderTimeoutMs: number;
  /** `scheme://host:port` of the pool. */
  readonly origin: string;
  /** The gateway's own calls (health checks, Docker ownership lookups). */
  readonly agent: http.Agent;
  readonly upgradeAgent: http.Agent;
  readonly isTls: boolean;
  /** Set when the upstream listens on a unix socket (the URL then only names the Host header). */
  readonly socketPath: string | undefined;

  constructor(server: string, tls_?: UpstreamTls, socketPath?: string, options: UpstreamOptions = {}) {
    this.url = new URL(server);
    this.isTls = this.url.protocol === 'https:';
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    this.hostHeader = this.url.host;
    // `timeout` is the free sockets' idle limit; every request through this agent sets a timeout of its own.
    const common = { scheduling: 'lifo' as const, maxFreeSockets: 256, timeout: options.idleConnectionMs ?? IDLE_CONNECTION_MS };
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
    if (secure !== undefined) {
      this.agent = new https.Agent({ keepAlive: true, ...common, ...secure });
      this.upgradeAgent = new https.Agent({ keepAlive: false, ...secure });
    } else {
      this.agent = new http.Agent({ keepAlive: true, ...common });
      this.upgradeAgent = new http.Agent({ keepAlive: false });
    }
    this.socketPath = socketPath;
    this.origin = this.url.origin;
    this.pool = new Pool(this.origin, {
      // Watches, `logs -f` and slow LISTs live as long as both ends want (invariants.md 11).
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(secure !== undefined ? { connect: secure } : {}),
    });
    this.responseHeaderTimeoutMs = options.responseHeaderTimeoutMs ?? 0;
    this.http2 = options.http2LongLived === true && secure !== undefined && socketPath === undefined ? new Http2Sessions(this.origin, secure) : undefined;
  }

  /** Request options for a path relative to the upstream's base path. */
  requestOptions(method: string, path: string, headers: string[], upgrade: boolean): http.RequestOptions {
    return {
      protocol: this.url.protocol,
      hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port || (this.isTls ? 443 : 80),
      ...(this.socketPath !== undefined ? { socketPath: this.socketPath } : {}),
      method,
      path: this.basePath + path,
      headers,
      agent: upgrade ? this.upgradeAgent : this.agent,
      setHost: false,
    };
  }

  request(options: http.RequestOptions): http.ClientRequest {
    return (this.isTls ? https : http).request(options);
  }

  close(): void {
    void this.pool.destroy();
    this.http2?.close();
    this.agent.destroy();
    this.upgradeAgent.destroy();
  }
}
