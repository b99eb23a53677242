import type { AccessRule } from './access-rules.js';

/**
 * Who is calling, as Keystone said when it validated the token. Made only in auth/, read everywhere else.
 * `Identity` is a project-scoped caller: what every COE works with. Domain- and system-scoped callers
 * (`ScopeOnlyIdentity`) reach only a COE that is configured to map them; unscoped tokens are refused in auth/.
 */
export interface Identity {
  readonly user: { readonly id: string; readonly name: string; readonly domainId: string; readonly domainName: string };
  readonly project: {
    readonly id: string;
    readonly name: string;
    readonly domainId: string;
    readonly domainName: string;
    /** The project's Keystone tags, read only when something uses them (a cluster open to tagged projects only). */
    readonly tags?: readonly string[];
  };
  readonly roles: readonly string[];
  /** When Keystone says the token stops being valid. */
  readonly expiresAt: Date;
  /** Set when the token was made from an application credential. */
  readonly applicationCredentialId?: string;
  /** The credential's access rules, when it has some: the only requests the token may make (auth/access-rules.ts). */
  readonly accessRules?: readonly AccessRule[];
}

/** A token scoped to a domain or to the whole system: no project, so no tenant of its own. */
export interface ScopeOnlyIdentity {
  readonly scope: 'domain' | 'system';
  readonly user: Identity['user'];
  /** The domain of a domain-scoped token. */
  readonly domain?: { readonly id: string; readonly name: string };
  readonly roles: readonly string[];
  readonly expiresAt: Date;
}

export type AnyIdentity = Identity | ScopeOnlyIdentity;

export function isProjectScoped(identity: AnyIdentity): identity is Identity {
  return 'project' in identity;
}
