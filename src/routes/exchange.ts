import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { auditPath, type AuditRecord, type AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ByteCount } from '../proxy/byte-count.js';
import { systemCode, type GatewayError } from '../errors.js';

/** nginx's code for "the client went away before an answer": the audit trail must not claim a 200 nobody got. */
const CLIENT_CLOSED = 499;

export interface ExchangeRecorderOptions {
  readonly coe: string;
  readonly logger: Logger;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
}

/**
 * What one request to a COE mount did, filled in as it goes (who, which namespace or object, upstream timing, bytes)
 * and reported once at its end as an access-log line, an audit record and metrics. The route handlers own the
 * request; this only observes it.
 */
export class Exchange {
  readonly id = randomUUID();
  readonly bytes: ByteCount = { in: 0, out: 0 };
  identity: AnyIdentity | undefined;
  /** Which of the mount's upstreams (a Kubernetes cluster) the request is for, when it has several. */
  cluster: string | undefined;
  namespace: string | undefined;
  object: string | undefined;
  /** Set for watches and follows: counted as open streams, kept out of the latency histogram. */
  longLived = false;
  private readonly started = performance.now();
  private upstreamSentAt: number | undefined;
  private upstreamMs: number | undefined;
  private reason: string | undefined;
  private status: number | undefined;
  private upgradedAt: number | undefined;
  private done = false;
  /** Read now: once the socket is gone, so is its address. */
  private readonly client: string;

  constructor(
    private readonly req: IncomingMessage,
    private readonly options: ExchangeRecorderOptions,
  ) {
    this.client = req.socket.remoteAddress ?? 'unknown';
  }

  /** The gateway answers this request itself (401, 403, 400 ... or its own 5xx); `bytes` is the answer's body size. */
  refuse(status: number, reason: string, bytes = 0): void {
    this.status = status;
    this.reason = reason;
    this.bytes.out += bytes;
  }

  /** What the route says of the request, known before the caller is. */
  describe(facts: { readonly cluster?: string | undefined; readonly namespace?: string | undefined; readonly object?: string | undefined; readonly longLived: boolean }): void {
    this.cluster = facts.cluster;
    this.namespace = facts.namespace;
    this.object = facts.object;
    this.longLived = facts.longLived;
  }

  /** The gateway ends this session or stream itself (its token was revoked or expired): the record says why. */
  endedBecause(reason: string): void {
    this.reason = reason;
  }

  /** The request leaves for the upstream now. */
  sentUpstream(): void {
    // Already over (the client left while it was being authenticated): nothing went upstream, nothing is open.
    if (this.done) return;
    this.upstreamSentAt = performance.now();
    if (this.longLived) this.options.metrics.watches.inc({ coe: this.options.coe });
  }

  /** The upstream's response head arrived. */
  readonly answered = (status: number): void => {
    this.status = status;
    if (this.upstreamSentAt !== undefined) {
      this.upstreamMs = performance.now() - this.upstreamSentAt;
      this.options.metrics.observeUpstream(this.options.coe, this.upstreamMs / 1000);
      if (this.cluster !== undefined) this.options.metrics.observeClusterUpstream(this.options.coe, this.cluster, this.upstreamMs / 1000);
    }
  };

  /** Writes the gateway's own refusal with `write` (which returns the body size) and records it with its reason. */
  refuseWith<R extends { readonly status: number; readonly message: string }>(reply: R, write: (reply: R) => number): void {
    this.refuse(reply.status, reply.message, write(reply));
  }

  /** The upstream could not be reached or broke before answering; the gateway answered with `bytes` of error. */
  upstreamFailed(err: GatewayError, bytes: number): void {
    this.options.metrics.upstreamErrors.inc({ coe: this.options.coe, code: systemCode(err.cause) || 'unknown' });
    this.refuse(err.status, err.message, bytes);
  }

  /** For an ordinary request: report when the response is over (finished, or the connection closed). */
  observe(res: ServerResponse): void {
    res.once('close', () => this.finish(res.headersSent ? res.statusCode : CLIENT_CLOSED, 'request'));
  }

  /**
   * For an upgrade: the hooks forwardUpgrade calls, and the report when the client's socket closes: one record for
   * the session when the upstream agreed (101), or one for the request when it was refused.
   */
  observeUpgrade(socket: Duplex): { onRefused: (status: number) => void; onUpgraded: () => { onClose: () => void }; bytes: ByteCount } {
    // Without an upgrade the exchange is over once the answer is written, or when the client leaves first.
    const over = (): void => {
      if (this.upgradedAt === undefined) this.finish(this.status ?? CLIENT_CLOSED, 'request');
    };
    socket.once('finish', over);
    socket.once('close', over);
    return {
      bytes: this.bytes,
      onRefused: this.answered,
      onUpgraded: () => {
        this.answered(101);
        this.upgradedAt = performance.now();
        const { coe, metrics, logger } = this.options;
        metrics.countRequest(coe, this.req.method ?? '', 101);
        if (this.cluster !== undefined) metrics.countClusterRequest(coe, this.cluster, 101);
        metrics.upgradedConnections.inc({ coe });
        logger.info({ ...this.logFields(101), ms: Math.round(this.upgradedAt - this.started) }, 'upgraded');
        return {
          onClose: () => {
            metrics.upgradedConnections.dec({ coe });
            this.finish(101, 'session');
          },
        };
      },
    };
  }

  private finish(status: number, kind: AuditRecord['kind']): void {
    if (this.done) return;
    this.done = true;
    const { coe, metrics, logger, audit } = this.options;
    const method = this.req.method ?? '';
    const durationMs = performance.now() - this.started;
    if (kind === 'request') {
      metrics.countRequest(coe, method, status);
      if (this.cluster !== undefined) metrics.countClusterRequest(coe, this.cluster, status);
      if (!this.longLived) metrics.observeDuration(coe, method, durationMs / 1000);
    }
    if (this.longLived && this.upstreamSentAt !== undefined) metrics.watches.dec({ coe });
    // The audit record is the per-request line; the access-log line is for debugging (the log's level decides).
    const level = kind === 'session' ? 'info' : 'debug';
    if (logger.isLevelEnabled(level)) {
      logger[level]({ ...this.logFields(status), ms: Math.round(durationMs), bytesIn: this.bytes.in, bytesOut: this.bytes.out }, kind === 'session' ? 'upgraded session ended' : 'request');
    }
    audit.record(this.auditRecord(kind, status, durationMs));
  }

  private logFields(status: number): Record<string, unknown> {
    const identity = this.identity;
    return {
      requestId: this.id,
      coe: this.options.coe,
      cluster: this.cluster,
      method: this.req.method,
      // The access log never carries the query: it may hold secrets (the audit trail keeps it, redacted).
      path: (this.req.url ?? '').split('?')[0],
      status,
      user: identity?.user.name,
      project: identity === undefined ? undefined : isProjectScoped(identity) ? identity.project.id : identity.scope,
    };
  }

  private auditRecord(kind: AuditRecord['kind'], status: number, durationMs: number): AuditRecord {
    // Filled field by field rather than spread from optional parts: one object per request instead of one per part.
    const record: Mutable<AuditRecord> = {
      kind,
      requestId: this.id,
      coe: this.options.coe,
      method: this.req.method ?? '',
      path: auditPath(this.req.url ?? ''),
      status,
      bytesIn: this.bytes.in,
      bytesOut: this.bytes.out,
      durationMs: Math.round(durationMs * 10) / 10,
      client: this.client,
    };
    if (this.cluster !== undefined) record.cluster = this.cluster;
    if (this.identity !== undefined) {
      const parties = auditParties(this.identity);
      if (parties.user !== undefined) record.user = parties.user;
      if (parties.project !== undefined) record.project = parties.project;
      if (parties.scope !== undefined) record.scope = parties.scope;
      if (parties.domain !== undefined) record.domain = parties.domain;
      if (parties.applicationCredentialId !== undefined) record.applicationCredentialId = parties.applicationCredentialId;
    }
    if (this.namespace !== undefined) record.namespace = this.namespace;
    if (this.object !== undefined) record.object = this.object;
    if (this.upstreamMs !== undefined) record.upstreamLatencyMs = Math.round(this.upstreamMs * 10) / 10;
    if (this.reason !== undefined) record.reason = this.reason;
    return record;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Who an identity is, as its audit records name it. */
type AuditParties = Pick<AuditRecord, 'user' | 'project' | 'scope' | 'domain' | 'applicationCredentialId'>;
const partiesByIdentity = new WeakMap<AnyIdentity, AuditParties>();

/**
 * The who-part of an identity's audit records, made once per identity: identities come from the token cache, so every
 * request of one token gets the same frozen objects and the audit line reuses their JSON (observability/audit.ts).
 */
function auditParties(identity: AnyIdentity): AuditParties {
  let parties = partiesByIdentity.get(identity);
  if (parties !== undefined) return parties;
  const user = Object.freeze({ id: identity.user.id, name: identity.user.name, domainId: identity.user.domainId });
  if (isProjectScoped(identity)) {
    const { project } = identity;
    parties = {
      user,
      project: Object.freeze({ id: project.id, name: project.name, domainId: project.domainId }),
      ...(identity.applicationCredentialId !== undefined ? { applicationCredentialId: identity.applicationCredentialId } : {}),
    };
  } else {
    const { domain } = identity;
    parties = { user, scope: identity.scope, ...(domain !== undefined ? { domain: Object.freeze({ id: domain.id, name: domain.name }) } : {}) };
  }
  partiesByIdentity.set(identity, Object.freeze(parties));
  return parties;
}

export function exchangeRecorder(options: ExchangeRecorderOptions): (req: IncomingMessage) => Exchange {
  return (req) => new Exchange(req, options);
}
