import { destination as pinoDestination, pino, type DestinationStream, type Logger } from 'pino';

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

class PinoAuditTrail implements AuditTrail {
  constructor(
    private readonly logger: Logger,
    private readonly destination: DestinationStream & { reopen?: () => void; flushSync?: () => void },
  ) {}

  record(entry: AuditRecord): void {
    this.logger.info(entry);
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

export function createAuditTrail(config: AuditDestination, stdout?: NodeJS.WritableStream): AuditTrail {
  if (config.destination === 'off') return { record: () => undefined, reopen: () => undefined, flush: () => undefined };
  const destination =
    config.destination === 'file'
      ? pinoDestination({ dest: config.file, mkdir: true, append: true, sync: false })
      : ((stdout as DestinationStream | undefined) ?? pinoDestination({ dest: 1, sync: false }));
  const logger = pino(
    {
      level: 'info',
      // No level, pid or hostname: every line is `{"type":"audit","time":...,<the record>}`.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: () => ({ type: 'audit' }) },
    },
    destination,
  );
  return new PinoAuditTrail(logger, destination);
}
