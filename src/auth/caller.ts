import { hasCode } from '../errors.js';
import type { RequestLine } from './access-rules.js';
import type { ApplicationCredentialExchange } from './application-credentials.js';
import type { Authenticator } from './authenticator.js';
import type { RequestCredential } from './credentials.js';
import { forbidden } from './errors.js';
import { isProjectScoped, type AnyIdentity, type Identity } from './identity.js';
import { scopeRefusal } from './token-identity.js';

/** Which tokens a mount serves: project-scoped only, or domain- and system-scoped ones too (mapped by the mount). */
export type AcceptedScopes = 'project' | 'any';

/**
 * A request's credential -> who is calling. A token is validated (cached: a known token's identity comes back at
 * once, without a promise); an application credential is exchanged for a token first, and exchanged once more when
 * that token was revoked before its expiry (Keystone revokes a user's tokens, not their application credentials, when
 * the password or a role assignment changes).
 */
export class Callers {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly applicationCredentials?: ApplicationCredentialExchange,
  ) {}

  /**
   * `request` (the method and path, for mounts that take credentials with access rules): a token whose application
   * credential has access rules is accepted only for a request they allow, and never without one (access-rules.ts).
   */
  identify(credential: RequestCredential, scopes: 'project', request?: RequestLine): Identity | Promise<Identity>;
  identify(credential: RequestCredential, scopes: AcceptedScopes, request?: RequestLine): AnyIdentity | Promise<AnyIdentity>;
  identify(credential: RequestCredential, scopes: AcceptedScopes, request?: RequestLine): AnyIdentity | Promise<AnyIdentity> {
    const found = credential.kind === 'token' ? this.authenticator.identify(credential.token, request) : this.exchanged(credential.id, credential.secret, request);
    return found instanceof Promise ? found.then((identity) => inScope(identity, scopes)) : inScope(found, scopes);
  }

  private async exchanged(id: string, secret: string, request: RequestLine | undefined): Promise<AnyIdentity> {
    const exchange = this.applicationCredentials;
    if (exchange === undefined) throw forbidden('application credentials are not accepted here; send a Keystone token');
    const token = await exchange.token(id, secret);
    try {
      return await this.authenticator.identify(token, request);
    } catch (err) {
      if (!hasCode(err, 'unauthenticated')) throw err;
      exchange.forget(id, secret, token);
    }
    const renewed = await exchange.token(id, secret);
    try {
      return await this.authenticator.identify(renewed, request);
    } catch (err) {
      // A fresh token refused too: not a revocation; do not exchange the credential again on every request.
      if (hasCode(err, 'unauthenticated')) {
        exchange.forget(id, secret, renewed);
        exchange.refuse(id, secret, err);
      }
      throw err;
    }
  }
}

function inScope(identity: AnyIdentity, scopes: AcceptedScopes): AnyIdentity {
  if (scopes === 'project' && !isProjectScoped(identity)) throw forbidden(scopeRefusal(identity));
  return identity;
}
