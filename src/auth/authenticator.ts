import type { KeystoneConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { GatewayError, hasCode } from '../errors.js';
import { accessRulesAllow, describeRules, type RequestLine } from './access-rules.js';
import { RENEW_TOKEN, forbidden, keystoneUnavailable, unauthorized } from './errors.js';
import { isProjectScoped, type AnyIdentity, type Identity } from './identity.js';
import { gatewayRefused, keystoneDown, tokenBodySchema, type KeystoneClient } from './keystone-client.js';
import type { ProjectTags } from './project-tags.js';
import type { ServiceTokenProvider } from './service-token.js';
import { ExpiringCache, tokenKey } from './token-cache.js';
import { revokes, type RevocationEvent, type TokenFacts } from './revocation.js';
import { identityFromToken, scopeRefusal, tokenFacts } from './token-identity.js';

export interface AuthenticatorOptions {
  readonly cacheTtlMs: number;
  readonly cacheMaxEntries: number;
  readonly negativeCacheTtlMs: number;
  readonly negativeCacheMaxEntries: number;
  /** A cached token in use is validated again in the background once its last validation is this old (0: never). */
  readonly revalidateMs?: number;
  readonly now?: () => number;
  readonly metrics?: Metrics;
  /** The gateway's service type in the Keystone catalog: the `service` of access rules that apply here. */
  readonly serviceType?: string;
  /**
   * Set when something decides on Keystone project tags (clusters open to tagged projects): each validated token's
   * project comes with its tags, and is cached no longer than they are trusted.
   */
  readonly projectTags?: ProjectTags;
}

export function authenticatorOptions(config: KeystoneConfig): AuthenticatorOptions {
  return {
    cacheTtlMs: config.cacheTtlSeconds * 1000,
    cacheMaxEntries: config.cacheMaxEntries,
    negativeCacheTtlMs: config.negativeCacheTtlSeconds * 1000,
    negativeCacheMaxEntries: config.negativeCacheMaxEntries,
    serviceType: config.serviceType,
    revalidateMs: config.revalidateSeconds * 1000,
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
 *  - Keystone failures are 503 and are never cached;
 *  - dropped when a Keystone revocation event revokes them (revoke), and, with revalidateMs, validated again in the
 *    background when used after that long: Keystone records no revocation event for a role removed from a user, it
 *    only validates with the roles the user has now (checked on Keystone Zed, Debian 12: assignment/core.py delete_grant).
 */
export class Authenticator {
  private readonly valid: ExpiringCache<AnyIdentity>;
  private readonly refused: ExpiringCache<GatewayError>;
  private readonly inflight = new Map<string, Promise<AnyIdentity>>();
  /** What each cached identity's revocation is decided on; kept beside it, gone with it. */
  private readonly facts = new WeakMap<AnyIdentity, TokenFacts>();
  /** When each cached identity was last confirmed by Keystone (revalidateMs). */
  private readonly validatedAt = new WeakMap<AnyIdentity, number>();
  private readonly revalidating = new Set<string>();
  private readonly revokedListeners: Array<{ readonly tell: (identity: AnyIdentity) => void; readonly held: () => Iterable<AnyIdentity> }> = [];
  private readonly now: () => number;
  /** The token-cache counters, their labels bound once (they are counted on every request). */
  private readonly lookups: Partial<Record<'hit' | 'negative_hit' | 'miss' | 'shared' | 'revalidate', { inc(): void }>> = {};

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
      for (const result of ['hit', 'negative_hit', 'miss', 'shared', 'revalidate'] as const) this.lookups[result] = metrics.tokenLookups(result);
    }
  }

  /**
   * Resolves to the project-scoped caller, or rejects with a GatewayError (403 for domain or system scope). `request`
   * is what the token is used for: a token whose credential has access rules is accepted only for a request they
   * allow, and never without `request`.
   */
  authenticate(token: string, request?: RequestLine): Promise<Identity> {
    const found = this.authenticateAnyScope(token, request);
    return found.then((identity) => {
      if (isProjectScoped(identity)) return identity;
      throw forbidden(scopeRefusal(identity));
    });
  }

  /** Like authenticate, but also accepts domain- and system-scoped tokens, for COEs configured to map them. */
  authenticateAnyScope(token: string, request?: RequestLine): Promise<AnyIdentity> {
    try {
      return Promise.resolve(this.identify(token, request));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Like authenticateAnyScope for the request path: a cached verdict comes back at once (the caller, or the cached
   * refusal thrown), without a promise or a turn of the event loop; otherwise the Keystone lookup's promise.
   */
  identify(token: string, request?: RequestLine): AnyIdentity | Promise<AnyIdentity> {
    const found = this.identifyToken(token);
    return found instanceof Promise ? found.then((identity) => this.permit(identity, request)) : this.permit(found, request);
  }

  /** The identity, unless its credential's access rules do not allow this request (checked per request, not cached). */
  private permit(identity: AnyIdentity, request: RequestLine | undefined): AnyIdentity {
    const rules = 'accessRules' in identity ? identity.accessRules : undefined;
    if (rules === undefined) return identity;
    if (request === undefined) {
      throw forbidden(`this token comes from an application credential with access rules (${describeRules(rules)}), which this endpoint does not take; use a token or a credential without access rules`);
    }
    const serviceType = this.options.serviceType ?? 'zun-gateway';
    if (accessRulesAllow(rules, serviceType, request)) return identity;
    throw forbidden(
      `this token comes from an application credential with access rules (${describeRules(rules)}) that do not allow ${request.method} ${request.path} on ${serviceType}; ` +
        'use a credential made for it (zun-gateway docker-config makes one for /docker) or one without access rules',
    );
  }

  private identifyToken(token: string): AnyIdentity | Promise<AnyIdentity> {
    const key = tokenKey(token);
    const hit = this.valid.get(key);
    if (hit !== undefined) {
      this.lookups.hit?.inc();
      const revalidateMs = this.options.revalidateMs ?? 0;
      if (revalidateMs > 0 && this.now() - (this.validatedAt.get(hit) ?? 0) >= revalidateMs) this.revalidate(key, token, hit);
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

  /**
   * Keystone's revocation events (revocation-poller.ts): every cached token one of them revokes is dropped, so its
   * next request is validated at Keystone again (and refused), and the listeners (open sessions) are told. Returns how
   * many were dropped.
   */
  revoke(events: readonly RevocationEvent[]): number {
    if (events.length === 0) return 0;
    const revoked = (identity: AnyIdentity): boolean => {
      const facts = this.facts.get(identity);
      return facts !== undefined && events.some((e) => revokes(e, facts));
    };
    const dropped: Array<[string, AnyIdentity]> = [];
    for (const [key, identity] of this.valid.entries()) if (revoked(identity)) dropped.push([key, identity]);
    for (const [key, identity] of dropped) this.drop(key, identity);
    const told = new Set(dropped.map(([, identity]) => identity));
    // A session outlives its token's cache entry (cacheTtlSeconds, or evicted, or replaced by a later validation of
    // the same token): the identities it holds are judged here too, or a session older than the TTL went on.
    for (const { tell, held } of this.revokedListeners) {
      for (const identity of [...held()]) if (!told.has(identity) && revoked(identity)) tell(identity);
    }
    return dropped.length;
  }

  /**
   * Told of each identity whose token ended at Keystone: a revocation event (those in the cache, and those `held`
   * names: the identities open sessions were opened with, which may no longer be cached), or a validation again that
   * Keystone refused or answered with fewer roles (the sessions opened with it end).
   */
  onRevoked(tell: (identity: AnyIdentity) => void, held: () => Iterable<AnyIdentity> = () => []): void {
    this.revokedListeners.push({ tell, held });
  }

  /**
   * Drops a token this replica trusted: it was revoked here (a sign-out), so its next use is asked of Keystone. Other
   * replicas keep it until their cache entry ends (docs/security.md).
   */
  forget(token: string): void {
    this.valid.delete(tokenKey(token));
  }

  get cacheSize(): { valid: number; refused: number } {
    return { valid: this.valid.size, refused: this.refused.size };
  }

  private drop(key: string, identity: AnyIdentity): void {
    if (this.valid.get(key) === identity) this.valid.delete(key);
    for (const { tell } of this.revokedListeners) tell(identity);
  }

  /**
   * The request that found `cached` goes on with it; Keystone is asked about the token meanwhile, once per token at a
   * time. Refused now: dropped (the next request gets the refusal). Fewer roles: the new identity replaces it and the
   * sessions of the old one end. Keystone away: tried again after another interval.
   */
  private revalidate(key: string, token: string, cached: AnyIdentity): void {
    if (this.revalidating.has(key) || this.inflight.has(key)) return;
    this.revalidating.add(key);
    this.validatedAt.set(cached, this.now());
    this.lookups.revalidate?.inc();
    this.validate(token, true)
      .then(({ identity: fresh, freshUntil }) => {
        if (this.valid.get(key) !== cached) return;
        if (!sameGrant(cached, fresh)) {
          this.valid.set(key, fresh, Math.min(this.now() + this.options.cacheTtlMs, fresh.expiresAt.getTime(), freshUntil));
          // The fresh identity stays cached; only the sessions of the old one end.
          this.drop(key, cached);
        }
      })
      .catch((err: unknown) => {
        if (hasCode(err, 'unauthenticated', 'forbidden')) {
          this.refused.set(key, err, this.now() + this.options.negativeCacheTtlMs);
          this.drop(key, cached);
        } else if (!hasCode(err, 'keystone_unavailable', 'keystone_busy', 'keystone_refuses_gateway')) {
          this.logger.error({ err }, 'revalidating a cached token failed unexpectedly');
        }
      })
      .finally(() => this.revalidating.delete(key));
  }

  private async lookup(key: string, token: string): Promise<AnyIdentity> {
    try {
      const { identity, freshUntil } = await this.validate(token);
      this.valid.set(key, identity, Math.min(this.now() + this.options.cacheTtlMs, identity.expiresAt.getTime(), freshUntil));
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

  /**
   * The token's identity, and until when what it says may be cached (its project's tags are trusted until then).
   * `again`: a validation again, which reads the project's tags again too.
   */
  private async validate(token: string, again = false): Promise<{ identity: AnyIdentity; freshUntil: number }> {
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
    let identity = identityFromToken(parsed.data, this.now());
    let freshUntil = Number.POSITIVE_INFINITY;
    // A token with access rules is accepted only where its rules allow, never on a mount that decides on tags; it
    // may not be allowed to read its project either.
    if (this.options.projectTags !== undefined && isProjectScoped(identity) && identity.accessRules === undefined) {
      const read = await this.options.projectTags.read(token, identity.project.id, again);
      identity = { ...identity, project: { ...identity.project, tags: read.tags } };
      freshUntil = read.freshUntil;
    }
    this.facts.set(identity, tokenFacts(parsed.data));
    this.validatedAt.set(identity, this.now());
    return { identity, freshUntil };
  }
}

/**
 * Whether a validation again grants what the cached identity did: the same scope, no role fewer and no project tag
 * fewer (a tag opens clusters).
 */
function sameGrant(cached: AnyIdentity, fresh: AnyIdentity): boolean {
  const scopeOf = (i: AnyIdentity): string => (isProjectScoped(i) ? `project:${i.project.id}` : `${i.scope}:${i.domain?.id ?? ''}`);
  const tagsOf = (i: AnyIdentity): readonly string[] => (isProjectScoped(i) ? (i.project.tags ?? []) : []);
  return (
    cached.user.id === fresh.user.id &&
    scopeOf(cached) === scopeOf(fresh) &&
    cached.roles.every((r) => fresh.roles.includes(r)) &&
    tagsOf(cached).every((t) => tagsOf(fresh).includes(t))
  );
}
