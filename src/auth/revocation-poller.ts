import { hasCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Authenticator } from './authenticator.js';
import type { KeystoneClient } from './keystone-client.js';
import { revocationEventsSchema } from './revocation.js';
import type { ServiceTokenProvider } from './service-token.js';

export interface RevocationPollerOptions {
  readonly intervalMs: number;
  readonly now?: () => number;
  readonly metrics?: Metrics;
}

/**
 * Keystone's clock and ours may differ: the first poll asks from this long before our start, and each poll from this
 * long before the newest event seen. Events are applied again harmlessly (a token issued after an event's
 * issued_before is never matched by it).
 */
const SKEW_MARGIN_MS = 60_000;

type Outcome = 'ok' | 'error' | 'forbidden';

/**
 * Follows Keystone's revocation events (what keystonemiddleware did) so that a token revoked at Keystone (`openstack
 * token revoke`, a user disabled, a password or role assignment changed) stops working on every replica within an
 * interval, not after the cache's TTL. Keystone away: cached tokens keep working as before, and the next poll asks
 * from where the last good one stopped.
 */
export class RevocationPoller {
  private since: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastOutcome: Outcome | undefined;
  private readonly now: () => number;

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly serviceToken: ServiceTokenProvider,
    private readonly authenticator: Authenticator,
    private readonly logger: Logger,
    private readonly options: RevocationPollerOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.since = this.now() - SKEW_MARGIN_MS;
  }

  start(): void {
    if (this.timer !== undefined || this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One poll (the interval's, or a test's); a poll still running is joined rather than doubled. */
  poll(): Promise<void> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pollOnce(): Promise<void> {
    const metrics = this.options.metrics;
    let outcome: Outcome = 'error';
    try {
      const token = await this.serviceToken.get();
      const res = await this.keystone.revocationEvents(token, new Date(this.since).toISOString());
      if (res.status === 401) this.serviceToken.invalidate(token);
      if (res.status === 403) {
        outcome = 'forbidden';
        return;
      }
      const parsed = revocationEventsSchema.safeParse(res.body);
      if (res.status !== 200 || !parsed.success) return;
      const { events } = parsed.data;
      const dropped = this.authenticator.revoke(events);
      metrics?.revocationEvents.inc(events.length);
      metrics?.revokedTokens.inc(dropped);
      if (dropped > 0) this.logger.info({ events: events.length, tokens: dropped }, 'tokens revoked at Keystone dropped from the cache');
      const newest = Math.max(...events.map((e) => Date.parse(e.revoked_at ?? e.issued_before)).filter(Number.isFinite));
      if (Number.isFinite(newest)) this.since = Math.max(this.since, newest - SKEW_MARGIN_MS);
      outcome = 'ok';
    } catch (err) {
      if (!hasCode(err, 'keystone_unavailable', 'keystone_busy', 'keystone_refuses_gateway')) this.logger.error({ err }, 'revocation poll failed unexpectedly');
    } finally {
      metrics?.revocationPolls.inc({ outcome });
      if (outcome === 'ok') metrics?.revocationLastSuccess.set(this.now() / 1000);
      this.report(outcome);
    }
  }

  /** Said once when the outcome changes, not at every interval. */
  private report(outcome: Outcome): void {
    if (outcome === this.lastOutcome) return;
    this.lastOutcome = outcome;
    if (outcome === 'forbidden') {
      this.logger.error("Keystone refuses the gateway its revocation events (identity:list_revoke_events): revoked tokens keep working until the cache's TTL; give the gateway's user the service role");
    } else if (outcome === 'error') {
      this.logger.warn('revocation events could not be read from Keystone: revoked tokens keep working until the cache TTL; polling goes on');
    } else this.logger.info('following Keystone revocation events');
  }
}
