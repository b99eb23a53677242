import { LRUCache } from 'lru-cache';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';

export interface RateLimitConfig {
  /** Sustained requests per second for one project on one COE. */
  readonly requestsPerSecond: number;
  /** Requests a project may make at once after a quiet spell. */
  readonly burst: number;
}

/** Projects (and scope-only callers) tracked at once; the least recently seen are forgotten, starting full again. */
const MAX_TRACKED = 100_000;

/**
 * A token bucket per project and COE: `burst` requests at once, refilled at `requestsPerSecond`. Every request
 * counts once, when it starts: a watch or an exec session costs one however long it lasts. Callers are told when
 * to come back (kubectl and the docker CLI's clients retry on 429 with Retry-After). One project's flood empties only
 * its own bucket, so the others are served as before.
 */
export class ProjectRateLimiter {
  private readonly buckets = new LRUCache<string, { tokens: number; at: number }>({ max: MAX_TRACKED });

  constructor(
    private readonly coe: string,
    private readonly config: RateLimitConfig,
    private readonly metrics?: Metrics,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one request for the caller; throws a `rate_limited` GatewayError (429, Retry-After) when the bucket is empty. */
  take(identity: AnyIdentity): void {
    const key = isProjectScoped(identity) ? `p:${identity.project.id}` : `u:${identity.user.id}`;
    const { requestsPerSecond: rate, burst } = this.config;
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.metrics?.rateLimited.inc({ coe: this.coe });
    const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
    const who = isProjectScoped(identity) ? `project ${identity.project.name}` : `user ${identity.user.name}`;
    throw new GatewayError('rate_limited', `too many requests from ${who} to /${this.coe}: the limit is ${rate} per second (bursts of ${burst}); retry after ${retryAfter} s`, {
      headers: { 'Retry-After': String(retryAfter) },
    });
  }
}
