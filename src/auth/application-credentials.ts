import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { keystoneUnavailable, unauthorized } from './errors.js';
import { hasCode } from '../errors.js';
import { tokenBodySchema, type KeystoneClient } from './keystone-client.js';
import { SERVICE_TOKEN_RENEW_BEFORE_MS } from './service-token.js';
import { ExpiringCache } from './token-cache.js';

const exchangeKey = (id: string, secret: string): string => createHash('sha256').update(id).update('\0').update(secret).digest('base64');

/** How long a credential Keystone refused is refused without asking again. */
const REJECTED_FOR_MS = 10_000;

interface Issued {
  readonly token: string;
}

/**
 * Exchanges application credentials (Docker's `Authorization: Basic id:secret`) for Keystone tokens, and keeps each
 * token until shortly before it expires, so a long-lived docker CLI configuration costs one authentication an hour.
 * Keyed by a hash of id and secret; concurrent requests share one exchange; rejected credentials are remembered
 * briefly so a wrong secret in a loop does not flood Keystone.
 */
export class ApplicationCredentialExchange {
  private readonly issued: ExpiringCache<Issued>;
  private readonly rejected: ExpiringCache<Error>;
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    maxEntries = 10_000,
  ) {
    this.issued = new ExpiringCache(maxEntries, now);
    this.rejected = new ExpiringCache(maxEntries, now);
  }

  token(id: string, secret: string): Promise<string> {
    const key = exchangeKey(id, secret);
    const hit = this.issued.get(key);
    if (hit !== undefined) return Promise.resolve(hit.token);
    const refusal = this.rejected.get(key);
    if (refusal !== undefined) return Promise.reject(refusal);
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.exchange(key, id, secret).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  /**
   * Keystone no longer accepts `token`, a token this exchange handed out for (id, secret): it was revoked before its
   * expiry (the user changed their password, was removed from a group or had a role assignment changed: Keystone
   * revokes every token of the user, and application credentials outlive that), so it is dropped and the next call
   * exchanges the credential again. Only that token is dropped: a newer one that another request got meanwhile stays.
   */
  forget(id: string, secret: string, token: string): void {
    const key = exchangeKey(id, secret);
    if (this.issued.get(key)?.token === token) this.issued.delete(key);
  }

  /**
   * Keystone refused even a token just exchanged for (id, secret): the credential is remembered as refused for as long
   * as a rejected secret is, so a client repeating it does not cost Keystone an exchange per request.
   */
  refuse(id: string, secret: string, err: Error): void {
    this.rejected.set(exchangeKey(id, secret), err, this.now() + REJECTED_FOR_MS);
  }

  private async exchange(key: string, id: string, secret: string): Promise<string> {
    let res;
    try {
      res = await this.keystone.authenticate({ method: 'application_credential', id, secret });
    } catch (err) {
      if (hasCode(err, 'keystone_unavailable', 'keystone_busy')) {
        throw keystoneUnavailable('Keystone is unavailable, so the application credential cannot be exchanged; retry shortly');
      }
      throw err;
    }
    if (res.status === 401 || res.status === 404 || res.status === 400) {
      const err = unauthorized('Keystone rejected the application credential (wrong id or secret, expired or deleted); Basic carries an application credential id and secret (openstack application credential create), not a user name and password');
      this.rejected.set(key, err, this.now() + REJECTED_FOR_MS);
      throw err;
    }
    const parsed = tokenBodySchema.safeParse(res.body);
    if (res.status !== 201 || res.subjectToken === undefined || !parsed.success) {
      this.logger.warn({ keystoneStatus: res.status }, 'application credential exchange failed');
      throw keystoneUnavailable(`Keystone could not exchange the application credential (HTTP ${res.status})`);
    }
    const expiresAtMs = Date.parse(parsed.data.token.expires_at);
    this.issued.set(key, { token: res.subjectToken }, expiresAtMs - SERVICE_TOKEN_RENEW_BEFORE_MS);
    return res.subjectToken;
  }
}
