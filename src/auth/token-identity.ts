import { z } from 'zod';
import { accessRuleSchema } from './access-rules.js';
import type { AnyIdentity, Identity, ScopeOnlyIdentity } from './identity.js';
import type { TokenBody } from './keystone-client.js';
import type { TokenFacts } from './revocation.js';
import { RENEW_TOKEN, forbidden, keystoneUnavailable, unauthorized } from './errors.js';

const SCOPE_HELP =
  'get a project-scoped token, e.g. `openstack --os-project-name <project> token issue`, or set OS_PROJECT_NAME / OS_PROJECT_ID';

/** Why a domain- or system-scoped token is refused where no mapping for it is configured. */
export function scopeRefusal(identity: ScopeOnlyIdentity): string {
  const what = identity.scope === 'domain' ? `scoped to the domain '${identity.domain?.name ?? ''}'` : 'system-scoped';
  return `the token is ${what}, not project-scoped, and this gateway maps no ${identity.scope}-scoped tokens; ${SCOPE_HELP}`;
}

/**
 * Turns Keystone's description of a valid token into an identity, or explains why this token cannot be used at all.
 * Throws `unauthenticated` or `forbidden` GatewayErrors for tokens that are valid at Keystone but not usable, so the caller can cache that too.
 */
export function identityFromToken(body: TokenBody, now: number): AnyIdentity {
  const t = body.token;
  const expiresAt = new Date(t.expires_at);
  if (Number.isNaN(expiresAt.getTime())) throw keystoneUnavailable('Keystone returned a token without a readable expiry');
  if (expiresAt.getTime() <= now) throw unauthorized(`the token has expired; ${RENEW_TOKEN}`);

  // Kept on the identity and checked against each request (Authenticator); never dropped, which would widen them.
  const rawRules = t.application_credential?.access_rules;
  const rules = rawRules !== undefined && rawRules.length > 0 ? z.array(accessRuleSchema).safeParse(rawRules) : undefined;
  if (rules !== undefined && !rules.success) throw forbidden('Keystone returned access rules the gateway cannot read; refusing the token rather than ignoring them');
  const user = { id: t.user.id, name: t.user.name, domainId: t.user.domain.id, domainName: t.user.domain.name ?? '' };
  const roles = [...new Set((t.roles ?? []).map((r) => r.name))].sort();
  if (t.project === undefined) {
    if (t.user.id === '' || t.user.name === '') throw forbidden('Keystone returned a token without a user; refusing to guess who this is');
    if (rules !== undefined) throw forbidden(`the token is from an application credential with access rules but not scoped to a project; ${SCOPE_HELP}`);
    if (t.domain !== undefined) return { scope: 'domain', user, domain: { id: t.domain.id, name: t.domain.name }, roles, expiresAt };
    if (t.system !== undefined) return { scope: 'system', user, roles, expiresAt };
    throw forbidden(`the token is unscoped; ${SCOPE_HELP}`);
  }
  if (t.user.id === '' || t.user.name === '' || t.project.id === '') {
    throw forbidden('Keystone returned a token without a user or project id; refusing to guess who this is');
  }
  return {
    user,
    project: {
      id: t.project.id,
      name: t.project.name,
      domainId: t.project.domain.id,
      domainName: t.project.domain.name ?? '',
    },
    roles,
    expiresAt,
    ...(t.application_credential ? { applicationCredentialId: t.application_credential.id } : {}),
    ...(rules?.success ? { accessRules: rules.data } : {}),
  };
}

/** What revocation events are matched against, from the same description of the token (revocation.ts). */
export function tokenFacts(body: TokenBody): TokenFacts {
  const t = body.token;
  const trust = t['OS-TRUST:trust'];
  const oauth = t['OS-OAUTH1'];
  const audit = t.audit_ids ?? [];
  return {
    // A token Keystone gave no issue time is treated as issued long ago: every event about it applies.
    issuedAtMs: t.issued_at !== undefined ? Date.parse(t.issued_at) : Number.NEGATIVE_INFINITY,
    expiresAtSecond: Math.floor(Date.parse(t.expires_at) / 1000),
    userId: t.user.id,
    userDomainId: t.user.domain.id,
    projectId: t.project?.id,
    scopeDomainId: t.project?.domain.id ?? t.domain?.id,
    roleIds: (t.roles ?? []).map((r) => r.id),
    auditId: audit[0],
    auditChainId: audit[1],
    ...(trust !== undefined ? { trust: { id: trust.id, trustorId: trust.trustor_user?.id, trusteeId: trust.trustee_user?.id } } : {}),
    ...(oauth?.consumer_id !== undefined ? { consumerId: oauth.consumer_id } : {}),
  };
}
