import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** Cache keys are hashes: the cache never holds a token (invariants.md 14). One-shot hash: half the cost of createHash. */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64');
}

interface Entry<V> {
  readonly value: V;
  readonly expiresAtMs: number;
}

/**
 * A bounded map from token hash to a verdict, with an expiry per entry that is checked on every read
 * (a token must never outlive its Keystone expires_at in the cache).
 */
export class ExpiringCache<V extends object> {
  private readonly entries: LRUCache<string, Entry<V>>;

  constructor(
    maxEntries: number,
    private readonly now: () => number,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, expiresAtMs: number): void {
    if (expiresAtMs <= this.now()) return;
    this.entries.set(key, { value, expiresAtMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
