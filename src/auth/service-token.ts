import type { ServiceCredentials } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayError } from '../errors.js';
import { gatewayRefused, keystoneDown, tokenBodySchema, type KeystoneClient } from './keystone-client.js';

/** Re-use the gateway's own token until this long before Keystone's expires_at (invariants.md 13). */
export const SERVICE_TOKEN_RENEW_BEFORE_MS = 120_000;

/**
 * After Keystone refused the gateway's credentials, the refusal is given to callers for this long without asking
 * again: a wrong password is not retried once per request (nor per readiness probe), which would load Keystone with
 * password checks and could lock the gateway's account where Keystone locks accounts after failed logins.
 */
export const SERVICE_REFUSAL_HOLD_MS = 10_000;

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
  private refused: { error: GatewayError; untilMs: number } | undefined;

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly credentials: ServiceCredentials,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<string> {
    const held = this.held;
    if (held && held.expiresAtMs - SERVICE_TOKEN_RENEW_BEFORE_MS > this.now()) return Promise.resolve(held.token);
    if (this.refused !== undefined && this.refused.untilMs > this.now()) return Promise.reject(this.refused.error);
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
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      this.logger.error(
        { keystoneStatus: res.status },
        "Keystone refused the gateway's service credentials (keystone.serviceCredentials); no user token can be validated",
      );
      const error = gatewayRefused(
        res.status === 404
          ? 'Keystone has no /auth/tokens under keystone.authUrl (HTTP 404): the URL should end in /v3'
          : `Keystone refuses the gateway's service credentials (keystone.serviceCredentials, HTTP ${res.status})`,
      );
      this.refused = { error, untilMs: this.now() + SERVICE_REFUSAL_HOLD_MS };
      throw error;
    }
    if (res.status !== 201 || res.subjectToken === undefined) {
      throw keystoneDown(`Keystone answered the gateway's login with HTTP ${res.status} and no token`);
    }
    const parsed = tokenBodySchema.safeParse(res.body);
    const expiresAtMs = parsed.success ? Date.parse(parsed.data.token.expires_at) : NaN;
    if (Number.isNaN(expiresAtMs)) throw keystoneDown('Keystone issued a service token without a readable expires_at');
    this.held = { token: res.subjectToken, expiresAtMs };
    this.logger.info({ expiresAt: new Date(expiresAtMs).toISOString() }, 'issued the gateway service token');
    return res.subjectToken;
  }
}
