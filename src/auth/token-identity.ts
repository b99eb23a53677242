import type { Identity } from './identity.js';
import type { TokenBody } from './keystone-client.js';
import { AuthError, forbidden, unauthorized } from './errors.js';

const SCOPE_HELP =
  'get a project-scoped token, e.g. `openstack --os-project-name <project> token issue`, or set OS_PROJECT_NAME / OS_PROJECT_ID';

/**
 * Turns Keystone's description of a valid token into an Identity, or explains why this token cannot be used here.
 * Throws AuthError (403) for tokens that are valid but not usable, so the caller can cache that verdict too.
 */
export function identityFromToken(body: TokenBody, now: number): Identity {
  const t = body.token;
  const expiresAt = new Date(t.expires_at);
  if (Number.isNaN(expiresAt.getTime())) throw new AuthError('ServiceUnavailable', 'Keystone returned a token without a readable expiry');
  if (expiresAt.getTime() <= now) throw unauthorized('the token has expired; get a new one with `openstack token issue`');

  const rules = t.application_credential?.access_rules;
  if (rules !== undefined && rules.length > 0) {
    throw forbidden(
      'this token comes from an application credential with access rules, which the gateway does not enforce; ' +
        'use an application credential without access rules',
    );
  }
  if (t.project === undefined) {
    if (t.domain !== undefined) throw forbidden(`the token is scoped to the domain '${t.domain.name}', not a project; ${SCOPE_HELP}`);
    if (t.system !== undefined) throw forbidden(`the token is system-scoped, not project-scoped; ${SCOPE_HELP}`);
    throw forbidden(`the token is unscoped; ${SCOPE_HELP}`);
  }
  if (t.user.id === '' || t.user.name === '' || t.project.id === '') {
    throw forbidden('Keystone returned a token without a user or project id; refusing to guess who this is');
  }
  return {
    user: { id: t.user.id, name: t.user.name, domainId: t.user.domain.id, domainName: t.user.domain.name ?? '' },
    project: {
      id: t.project.id,
      name: t.project.name,
      domainId: t.project.domain.id,
      domainName: t.project.domain.name ?? '',
    },
    roles: [...new Set((t.roles ?? []).map((r) => r.name))].sort(),
    expiresAt,
    ...(t.application_credential ? { applicationCredentialId: t.application_credential.id } : {}),
  };
}
