import type { AnyIdentity } from '../auth/identity.js';

/** Why the gateway ends a session: its token was revoked at Keystone, or reached its expiry. */
export type SessionEndReason = 'revoked' | 'expired';

/** Starts a timer; returns how to cancel it (injected in tests). */
export type Schedule = (ms: number, run: () => void) => () => void;

const realSchedule: Schedule = (ms, run) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/** Node's timers take at most 2^31-1 ms; a later expiry is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Held {
  readonly ends: Set<(reason: SessionEndReason) => void>;
  cancelExpiry: () => void;
}

/**
 * The sessions open with each token (upgraded exec, attach, port-forward and docker hijacks; watches and follows):
 * a session lives no longer than its token. When the token expires, or a Keystone revocation event drops it from
 * the cache (auth/revocation-poller.ts), every session it opened is ended, each with the reason (Teleport's kube
 * proxy does the same). Keyed by the identity object: the token cache hands every request of one token the same one.
 */
export class Sessions {
  private readonly open = new Map<AnyIdentity, Held>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly schedule: Schedule = realSchedule,
  ) {}

  /** A session of `identity` began; `end` closes it. Returns the unregistering for when it closes by itself. */
  track(identity: AnyIdentity, end: (reason: SessionEndReason) => void): () => void {
    let held = this.open.get(identity);
    if (held === undefined) {
      const fresh: Held = { ends: new Set(), cancelExpiry: () => undefined };
      this.open.set(identity, fresh);
      this.armExpiry(identity, fresh);
      held = fresh;
    }
    held.ends.add(end);
    const entry = held;
    return () => {
      entry.ends.delete(end);
      if (entry.ends.size === 0 && this.open.get(identity) === entry) {
        entry.cancelExpiry();
        this.open.delete(identity);
      }
    };
  }

  /** The token behind `identity` was revoked: its sessions end now. */
  revoked(identity: AnyIdentity): void {
    this.endAll(identity, 'revoked');
  }

  /** The identities that have sessions open (their revocation is judged even after they left the token cache). */
  identities(): Iterable<AnyIdentity> {
    return this.open.keys();
  }

  /** How many sessions are tracked (for tests and shutdown). */
  get size(): number {
    let n = 0;
    for (const held of this.open.values()) n += held.ends.size;
    return n;
  }

  private armExpiry(identity: AnyIdentity, held: Held): void {
    const left = identity.expiresAt.getTime() - this.now();
    if (left <= 0) {
      queueMicrotask(() => this.endAll(identity, 'expired'));
      return;
    }
    held.cancelExpiry = this.schedule(Math.min(left, MAX_TIMER_MS), () => {
      if (this.now() >= identity.expiresAt.getTime()) this.endAll(identity, 'expired');
      else this.armExpiry(identity, held);
    });
  }

  private endAll(identity: AnyIdentity, reason: SessionEndReason): void {
    const held = this.open.get(identity);
    if (held === undefined) return;
    this.open.delete(identity);
    held.cancelExpiry();
    for (const end of [...held.ends]) end(reason);
  }
}
