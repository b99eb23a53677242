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
  /** The COE's upstream the request went to, when it has several (a Kubernetes cluster's configured name). */
  readonly cluster?: string;
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

/** A string as a JSON value (quoted and escaped). */
const quoted = (value: string): string => JSON.stringify(value);

/** A number as a JSON value (JSON has no NaN or Infinity). */
const numeric = (value: number): string => (Number.isFinite(value) ? String(value) : 'null');

/**
 * The JSON text of each who-part of a record (user, project, domain), made once per object: the exchange hands the
 * same frozen objects for every request of one identity (see auditParties in routes/exchange.ts).
 */
const partJson = new WeakMap<object, string>();
function jsonOfPart(part: object): string {
  let json = partJson.get(part);
  if (json === undefined) {
    json = JSON.stringify(part);
    partJson.set(part, json);
  }
  return json;
}

/**
 * ISO time of the current millisecond: the date and time to the second made once per second, the milliseconds
 * appended (at a thousand requests a second nearly every record has a millisecond of its own, and toISOString
 * was one of the largest parts of a record).
 */
let isoMs = Number.NaN;
let isoText = '';
let isoSecond = Number.NaN;
let isoSecondText = '';
export function isoNow(ms: number = Date.now()): string {
  if (ms !== isoMs) {
    const second = Math.floor(ms / 1000);
    if (second !== isoSecond) {
      isoSecond = second;
      // Up to the milliseconds' digits ("2026-12-07T20:52:47."; six-digit years are longer): "000Z" cut off.
      isoSecondText = new Date(second * 1000).toISOString().slice(0, -4);
    }
    isoMs = ms;
    isoText = `${isoSecondText}${String(ms - second * 1000).padStart(3, '0')}Z`;
  }
  return isoText;
}

/**
 * One audit line: `{"type":"audit","time":...,<the record's fields in their declared order>}`. Composed field by field
 * (strings through JSON.stringify, who-parts from partJson) because on the request path this is about a quarter of the
 * cost of one JSON.stringify of the whole record, and the record was the largest single cost of a request
 * (docs/performance.md). audit.test.ts checks it against JSON.parse for every optional field and hostile strings.
 */
export function auditLine(r: AuditRecord, time: string = isoNow()): string {
  let line = `{"type":"audit","time":"${time}","kind":${quoted(r.kind)},"requestId":${quoted(r.requestId)},"coe":${quoted(r.coe)}`;
  if (r.cluster !== undefined) line += `,"cluster":${quoted(r.cluster)}`;
  line += `,"method":${quoted(r.method)},"path":${quoted(r.path)},"status":${numeric(r.status)}`;
  if (r.user !== undefined) line += `,"user":${jsonOfPart(r.user)}`;
  if (r.project !== undefined) line += `,"project":${jsonOfPart(r.project)}`;
  if (r.scope !== undefined) line += `,"scope":${quoted(r.scope)}`;
  if (r.domain !== undefined) line += `,"domain":${jsonOfPart(r.domain)}`;
  if (r.applicationCredentialId !== undefined) line += `,"applicationCredentialId":${quoted(r.applicationCredentialId)}`;
  if (r.namespace !== undefined) line += `,"namespace":${quoted(r.namespace)}`;
  if (r.object !== undefined) line += `,"object":${quoted(r.object)}`;
  line += `,"bytesIn":${numeric(r.bytesIn)},"bytesOut":${numeric(r.bytesOut)},"durationMs":${numeric(r.durationMs)}`;
  if (r.upstreamLatencyMs !== undefined) line += `,"upstreamLatencyMs":${numeric(r.upstreamLatencyMs)}`;
  line += `,"client":${quoted(r.client)}`;
  if (r.reason !== undefined) line += `,"reason":${quoted(r.reason)}`;
  return `${line}}\n`;
}

/** Records go out as auditLine lines through a batching writer (line-destination.ts); no logger machinery. */
class JsonLineAuditTrail implements AuditTrail {
  constructor(private readonly destination: LineSink) {}

  record(entry: AuditRecord): void {
    this.destination.write(auditLine(entry));
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
