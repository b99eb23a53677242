import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.js';

export interface LoginThrottleOptions {
  /** Failed sign-ins allowed from one source address (an IPv6 /64 counts as one) within the window. */
  readonly perAddress: number;
  /** Failed sign-ins allowed for one user name (or application credential) within the window, from anywhere. */
  readonly perUser: number;
  readonly windowMs: number;
  /** Addresses, and user names, remembered at most: the least recently failed are forgotten first. */
  readonly maxTracked: number;
  readonly now?: () => number;
}

/** A sign-in refused before Keystone is asked: too many failures lately for this address or this user name. */
export function tooManyFailures(message: string, retryAfterSeconds: number): GatewayError {
  return new GatewayError('rate_limited', message, { headers: { 'Retry-After': String(retryAfterSeconds) } });
}

/**
 * One sign-in under way. It counts as a failure from the moment it starts, so a burst of parallel guesses cannot all
 * pass the check before the first of them fails; it is taken back when Keystone accepts the credentials or gives no
 * verdict on them (unreachable, failing).
 */
export interface LoginAttempt {
  succeeded(): void;
  inconclusive(): void;
}

/**
 * The key of a source address: IPv4 as it is, IPv6 by its /64 (one machine is usually given a whole /64, so counting
 * single IPv6 addresses would count nothing).
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * Failed sign-ins per source address and per user name in a sliding window (per process: with several replicas each
 * counts its own, which is why docs/security.md also asks for Keystone's own lockout). Bounded: at most `maxTracked`
 * keys of each kind, each holding at most its limit of timestamps.
 */
export class LoginThrottle {
  private readonly byAddress: LRUCache<string, number[]>;
  private readonly byUser: LRUCache<string, number[]>;
  private readonly now: () => number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.now = options.now ?? Date.now;
    this.byAddress = new LRUCache({ max: options.maxTracked });
    this.byUser = new LRUCache({ max: options.maxTracked });
  }

  /** Starts a sign-in for `user` (a key the caller makes: domain and name, or an application credential id). */
  begin(address: string, user: string): LoginAttempt {
    const now = this.now();
    const fromAddress = this.recent(this.byAddress, addressKey(address), now);
    const forUser = this.recent(this.byUser, user, now);
    const wait = Math.max(this.waitMs(fromAddress, this.options.perAddress, now), this.waitMs(forUser, this.options.perUser, now));
    if (wait > 0) {
      const minutes = Math.ceil(wait / 60_000);
      const which = this.waitMs(forUser, this.options.perUser, now) > 0 ? 'for this user name' : 'from your address';
      throw tooManyFailures(
        `too many failed sign-ins ${which}: try again in ${minutes} minute${minutes === 1 ? '' : 's'}. kubectl and docker with your credentials keep working meanwhile`,
        Math.ceil(wait / 1000),
      );
    }
    fromAddress.push(now);
    forUser.push(now);
    this.byAddress.set(addressKey(address), fromAddress);
    this.byUser.set(user, forUser);
    const withdraw = (list: number[]): void => {
      const i = list.lastIndexOf(now);
      if (i >= 0) list.splice(i, 1);
    };
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        withdraw(fromAddress);
        // The user's earlier failures are forgiven; attempts started since, still under way, keep counting.
        const later = forUser.filter((t) => t > now);
        forUser.splice(0, forUser.length, ...later);
      },
      inconclusive: () => {
        if (settled) return;
        settled = true;
        withdraw(fromAddress);
        withdraw(forUser);
      },
    };
  }

  /** The key's failures still inside the window (the same array as stored, so later changes reach the cache). */
  private recent(cache: LRUCache<string, number[]>, key: string, now: number): number[] {
    const list = cache.get(key) ?? [];
    const from = now - this.options.windowMs;
    const firstInside = list.findIndex((t) => t > from);
    list.splice(0, firstInside < 0 ? list.length : firstInside);
    return list;
  }

  /** How long until the oldest failure leaves the window, when the limit is reached; 0 otherwise. */
  private waitMs(list: readonly number[], limit: number, now: number): number {
    if (list.length < limit) return 0;
    return Math.max(1, (list[list.length - limit] as number) + this.options.windowMs - now);
  }
}
