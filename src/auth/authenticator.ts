import type { KeystoneConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { GatewayError, hasCode } from '../errors.js';
import { RENEW_TOKEN, forbidden, keystoneUnavailable, unauthorized } from './errors.js';
import { isProjectScoped, type AnyIdentity, type Identity } from './identity.js';
import { gatewayRefused, keystoneDown, tokenBodySchema, type KeystoneClient } from './keystone-client.js';
import type { ServiceTokenProvider } from './service-token.js';
import { ExpiringCache, tokenKey } from './token-cache.js';
import { identityFromToken, scopeRefusal } from './token-identity.js';

export interface AuthenticatorOptions {
  readonly cacheTtlMs: number;
  readonly cacheMaxEntries: number;
  readonly negativeCacheTtlMs: number;
  readonly negativeCacheMaxEntries: number;
  readonly now?: () => number;
  readonly metrics?: Metrics;
}

export function authenticatorOptions(config: KeystoneConfig): AuthenticatorOptions {
  return {
    cacheTtlMs: config.cacheTtlSeconds * 1000,
    cacheMaxEntries: config.cacheMaxEntries,
    negativeCacheTtlMs: config.negativeCacheTtlSeconds * 1000,
    negativeCacheMaxEntries: config.negativeCacheMaxEntries,
  };
}

const UNAVAILABLE = 'Keystone is unavailable, so this new token cannot be checked; retry shortly (tokens already in use keep working)';
const GATEWAY_REFUSED =
  "Keystone refuses the gateway's own service account, so no new token can be checked; this is not a fault of your token: tell the gateway's operator (its log says what to fix)";

/**
 * Keystone token -> Identity, online validation with a cache (invariants.md 12-16):
 *  - valid tokens cached by hash for min(cacheTtl, expires_at), expiry re-checked on every hit;
 *  - invalid (Keystone 404) and unusable (403) verdicts cached briefly in a bounded negative cache;
 *  - concurrent lookups of one token share one Keystone call;
 *  - Keystone failures are 503 and are never cached.
 */
export class Authenticator {
  private readonly valid: ExpiringCache<AnyIdentity>;
  private readonly refused: ExpiringCache<GatewayError>;
  private readonly inflight = new Map<string, Promise<AnyIdentity>>();
  private readonly now: () => number;
  /** The token-cache counters, their labels bound once (they are counted on every request). */
  private readonly lookups: Partial<Record<'hit' | 'negative_hit' | 'miss' | 'shared', { inc(): void }>> = {};

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly serviceToken: ServiceTokenProvider,
    private readonly options: AuthenticatorOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? Date.now;
    this.valid = new ExpiringCache(options.cacheMaxEntries, this.now);
    this.refused = new ExpiringCache(options.negativeCacheMaxEntries, this.now);
    options.metrics?.reportTokenCacheSize(() => this.cacheSize);
    const metrics = options.metrics;
    if (metrics !== undefined) {
      for (const result of ['hit', 'negative_hit', 'miss', 'shared'] as const) this.lookups[result] = metrics.tokenLookups(result);
    }
  }

  /** Resolves to the project-scoped caller, or rejects with a GatewayError (403 for domain or system scope). */
  authenticate(token: string): Promise<Identity> {
    const found = this.authenticateAnyScope(token);
    return found.then((identity) => {
      if (isProjectScoped(identity)) return identity;
      throw forbidden(scopeRefusal(identity));
    });
  }

  /** Like authenticate, but also accepts domain- and system-scoped tokens, for COEs configured to map them. */
  authenticateAnyScope(token: string): Promise<AnyIdentity> {
    try {
      return Promise.resolve(this.identify(token));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Like authenticateAnyScope for the request path: a cached verdict comes back at once (the caller, or the cached
   * refusal thrown), without a promise or a turn of the event loop; otherwise the Keystone lookup's promise.
   */
  identify(token: string): AnyIdentity | Promise<AnyIdentity> {
    const key = tokenKey(token);
    const hit = this.valid.get(key);
    if (hit !== undefined) {
      this.lookups.hit?.inc();
      return hit;
    }
    const refusal = this.refused.get(key);
    if (refusal !== undefined) {
      this.lookups.negative_hit?.inc();
      throw refusal;
    }
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      this.lookups.miss?.inc();
      pending = this.lookup(key, token).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    } else this.lookups.shared?.inc();
    return pending;
  }

  get cacheSize(): { valid: number; refused: number } {
    return { valid: this.valid.size, refused: this.refused.size };
  }

  private async lookup(key: string, token: string): Promise<AnyIdentity> {
    try {
      const identity = await this.validate(token);
      this.valid.set(key, identity, Math.min(this.now() + this.options.cacheTtlMs, identity.expiresAt.getTime()));
      return identity;
    } catch (err) {
      if (hasCode(err, 'unauthenticated', 'forbidden')) {
        this.refused.set(key, err, this.now() + this.options.negativeCacheTtlMs);
        throw err;
      }
      if (hasCode(err, 'keystone_refuses_gateway')) throw new GatewayError('keystone_refuses_gateway', GATEWAY_REFUSED);
      if (hasCode(err, 'keystone_unavailable', 'keystone_busy')) {
        this.logger.warn({ err: err.message }, 'token validation failed: Keystone unavailable');
        throw keystoneUnavailable(UNAVAILABLE);
      }
      this.logger.error({ err }, 'token validation failed unexpectedly');
      throw keystoneUnavailable(UNAVAILABLE);
    }
  }

  private async validate(token: string): Promise<AnyIdentity> {
    let serviceToken = await this.serviceToken.get();
    let res = await this.keystone.validateToken(serviceToken, token);
    if (res.status === 401) {
      // Our own token is no longer accepted (revoked, keys rotated): get a new one and ask once more.
      this.serviceToken.invalidate(serviceToken);
      serviceToken = await this.serviceToken.get();
      res = await this.keystone.validateToken(serviceToken, token);
      if (res.status === 401) throw keystoneDown("Keystone rejects the gateway's own token even after renewal");
    }
    if (res.status === 404) {
      throw unauthorized(`the token is not valid (expired, revoked or unknown to Keystone); ${RENEW_TOKEN}`);
    }
    if (res.status === 403) {
      this.logger.error("Keystone refuses to let the gateway validate tokens: give the gateway's user the 'service' role");
      throw gatewayRefused('the gateway is not allowed to validate tokens');
    }
    if (res.status !== 200) throw keystoneDown(`Keystone answered HTTP ${res.status}`);
    const parsed = tokenBodySchema.safeParse(res.body);
    if (!parsed.success) throw keystoneDown('Keystone returned a token body the gateway cannot read');
    return identityFromToken(parsed.data, this.now());
  }
}
