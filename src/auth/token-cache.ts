import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** Cache keys are hashes: the cache never holds a token (invariants.md 14). One-shot hash: half the cost of createHash. */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64');
}

/**
 * A bounded map from a key (a token's hash) to a verdict that expires at a given time (a token must never outlive
 * its Keystone expires_at in the cache): lru-cache's per-entry ttl on the injected clock, checked on every read.
 */
export class ExpiringCache<V extends object> {
  private readonly cache: LRUCache<string, V>;

  constructor(
    maxEntries: number,
    private readonly now: () => number,
  ) {
    // ttlResolution 0: the clock is read on every get (the default caches it for a millisecond of real time, which an
    // injected clock does not follow).
    this.cache = new LRUCache({ max: maxEntries, ttlResolution: 0, perf: { now } });
  }

  get(key: string): V | undefined {
    return this.cache.get(key);
  }

  /** Keeps `value` until `expiresAtMs` (exclusive); one already due is not kept. */
  set(key: string, value: V, expiresAtMs: number): void {
    // lru-cache keeps an entry while `now - start <= ttl`, and a ttl of 0 means "forever".
    const ttl = Math.floor(expiresAtMs - this.now()) - 1;
    if (ttl <= 0) return;
    this.cache.set(key, value, { ttl });
  }

  /** The entries not yet expired, for a pass over all of them (revocation). */
  entries(): Generator<[string, V]> {
    return this.cache.entries() as Generator<[string, V]>;
  }

  delete(key: string): void {
    this.cache.delete(key);
  }

  get size(): number {
    return this.cache.size;
  }
}
