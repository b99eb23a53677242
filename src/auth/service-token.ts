import type { ServiceCredentials } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { KeystoneUnavailableError, tokenBodySchema, type KeystoneClient } from './keystone-client.js';

/** Re-use the gateway's own token until this long before Keystone's expires_at (invariants.md 13). */
export const SERVICE_TOKEN_RENEW_BEFORE_MS = 120_000;

interface HeldToken {
  readonly token: string;
  readonly expiresAtMs: number;
}

/**
 * The gateway's own Keystone token, used as X-Auth-Token when validating users' tokens. Issued on first use,
 * shared by concurrent callers, renewed before it expires and dropped when Keystone says it is no longer good.
 */
export class ServiceTokenProvider {
  private held: HeldToken | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly credentials: ServiceCredentials,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<string> {
    const held = this.held;
    if (held && held.expiresAtMs - SERVICE_TOKEN_RENEW_BEFORE_MS > this.now()) return Promise.resolve(held.token);
    this.pending ??= this.issue().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Keystone answered 401 to a request made with this token: forget it so the next get() issues a new one. */
  invalidate(token: string): void {
    if (this.held?.token === token) this.held = undefined;
  }

  private async issue(): Promise<string> {
    const res = await this.keystone.issueServiceToken(this.credentials);
    if (res.status !== 201 || res.subjectToken === undefined) {
      this.logger.error(
        { keystoneStatus: res.status },
        "Keystone refused the gateway's service credentials (keystone.serviceCredentials); no user token can be validated",
      );
      throw new KeystoneUnavailableError(`Keystone refused the gateway's own credentials (HTTP ${res.status})`);
    }
    const parsed = tokenBodySchema.safeParse(res.body);
    const expiresAtMs = parsed.success ? Date.parse(parsed.data.token.expires_at) : NaN;
    if (Number.isNaN(expiresAtMs)) throw new KeystoneUnavailableError('Keystone issued a service token without a readable expires_at');
    this.held = { token: res.subjectToken, expiresAtMs };
    this.logger.info({ expiresAt: new Date(expiresAtMs).toISOString() }, 'issued the gateway service token');
    return res.subjectToken;
  }
}
