import { batchedLines } from './line-destination.js';

/**
 * One record per API request and per upgraded session: who (Keystone user and project) did what (COE, method, path,
 * namespace or Docker object) with which outcome. Never a token, a password or a header value; the query keeps its
 * keys but loses the values of anything that looks like a credential.
 */
export interface AuditRecord {
  /** `request`: an HTTP exchange (an upgrade the upstream refused included); `session`: an upgraded session, at its end. */
  readonly kind: 'request' | 'session';
  readonly requestId: string;
  readonly coe: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly user?: { readonly id: string; readonly name: string; readonly domainId: string };
  readonly project?: { readonly id: string; readonly name: string; readonly domainId: string };
  /** For domain- or system-scoped tokens, instead of a project. */
  readonly scope?: 'domain' | 'system';
  readonly domain?: { readonly id: string; readonly name: string };
  /** Set when the token was made from an application credential. */
  readonly applicationCredentialId?: string;
  readonly namespace?: string;
  /** The Docker object (container, image, exec, volume, network) the request names. */
  readonly object?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  /** From sending upstream to the upstream's response head; absent when the request never went upstream. */
  readonly upstreamLatencyMs?: number;
  readonly client: string;
  /** Why the gateway itself refused (401, 403, 400 ...), as told to the client. */
  readonly reason?: string;
}

export interface AuditTrail {
  record(entry: AuditRecord): void;
  /** Reopens the file after log rotation moved it away (SIGHUP). */
  reopen(): void;
  /** Writes out what is buffered; called at shutdown. */
  flush(): void;
}

export type AuditDestination = { readonly destination: 'stdout' } | { readonly destination: 'file'; readonly file: string } | { readonly destination: 'off' };

/** Query parameters whose values never reach the audit trail. */
const SECRET_QUERY_KEY = /token|passw|secret|key|auth|credential|signature|session/i;

/** The path with the values of credential-like query parameters replaced; keys and everything else as sent. */
export function auditPath(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawKey = eq < 0 ? pair : pair.slice(0, eq);
      let key = rawKey;
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      } catch {
        // An undecodable key is judged as sent.
      }
      return eq >= 0 && SECRET_QUERY_KEY.test(key) ? `${rawKey}=REDACTED` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** Where audit lines go: a batching writer, or any stream (tests). */
export interface LineSink {
  write(line: string): unknown;
  reopen?: () => void;
  flushSync?: () => void;
}

/**
 * Records go out as `{"type":"audit","time":...,<the record>}` lines through a batching writer (line-destination.ts):
 * one JSON.stringify per request, no logger machinery on the hot path (docs/performance.md).
 */
class JsonLineAuditTrail implements AuditTrail {
  constructor(private readonly destination: LineSink) {}

  record(entry: AuditRecord): void {
    this.destination.write(`{"type":"audit","time":"${new Date().toISOString()}",${JSON.stringify(entry).slice(1)}\n`);
  }

  reopen(): void {
    this.destination.reopen?.();
  }

  flush(): void {
    try {
      this.destination.flushSync?.();
    } catch {
      // Nothing buffered, or the destination is already closed.
    }
  }
}

/** `stdout`: the stream the gateway's log goes to (one writer per file descriptor, so lines never interleave). */
export function createAuditTrail(config: AuditDestination, stdout: LineSink): AuditTrail {
  if (config.destination === 'off') return { record: () => undefined, reopen: () => undefined, flush: () => undefined };
  const destination: LineSink =
    config.destination === 'file' ? batchedLines(config.file) : stdout;
  return new JsonLineAuditTrail(destination);
}
