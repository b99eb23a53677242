import type { Identity, ScopeOnlyIdentity } from '../auth/identity.js';
import type { ImpersonationConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/** A header value the apiserver will read back exactly: visible ASCII and inner spaces. */
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Whatever the configured prefix, the user name sent must not fall in the apiserver's reserved space: a prefix that
 * is itself the start of `system:` (`system`, `sys`) plus a Keystone name such as `:masters` would (invariants.md 5).
 */
function checkNotReserved(user: string): void {
  if (user.toLowerCase().startsWith('system:')) {
    throw inexpressible(`the Keystone user name would be impersonated as '${user}', a name reserved by Kubernetes; ask an operator (k8s.impersonation.userPrefix)`);
  }
}

/** The identity cannot be expressed safely to the apiserver: refuse (403) rather than forward with less or more. */
const inexpressible = (message: string): GatewayError => new GatewayError('forbidden', message);

/** Extras are informational; values that are not header-safe are percent-encoded rather than dropped. */
function extraValue(value: string): string {
  return HEADER_SAFE.test(value) ? value : encodeURIComponent(value);
}

/** `keystone:project:<id>`: every member of the project, whatever their roles. */
export function projectGroup(projectId: string, config: ImpersonationConfig): string {
  return `${config.groupPrefix}project:${projectId}`;
}

/** `keystone:project:<id>:role:<role>`: what RoleBindings name to grant a Keystone role. */
export function roleGroup(projectGroupName: string, role: string): string {
  return `${projectGroupName}:role:${role}`;
}

/**
 * The identity the apiserver will act as, as Impersonate-* header lines (flat, like rawHeaders).
 *  - one Impersonate-Group line per group, never comma-joined (invariants.md 4);
 *  - everything derived from Keystone is prefixed, so nothing becomes a `system:` user or group (invariants.md 5);
 *  - a missing user or project fails closed: no headers, no forwarding with the gateway's own rights (invariants.md 3).
 */
export function impersonationHeaders(identity: Identity, config: ImpersonationConfig): string[] {
  const userName = identity.user.name;
  const projectId = identity.project.id;
  if (userName.length === 0 || projectId.length === 0) {
    throw inexpressible('the token names no user or no project; refusing to forward');
  }
  const user = `${config.userPrefix}${userName}`;
  checkNotReserved(user);
  if (!HEADER_SAFE.test(user)) {
    throw inexpressible(`the Keystone user name '${userName}' cannot be carried in an HTTP header; ask an operator`);
  }
  const headers: string[] = ['Impersonate-User', user];
  const group0 = projectGroup(projectId, config);
  if (!HEADER_SAFE.test(group0)) throw inexpressible('the project id cannot be carried in an HTTP header');
  headers.push('Impersonate-Group', group0);
  if (config.tenantGroup !== undefined) headers.push('Impersonate-Group', config.tenantGroup);
  for (const role of identity.roles) {
    const group = roleGroup(group0, role);
    // A role that cannot be written as a header is left out: fewer groups means fewer rights, never more.
    if (HEADER_SAFE.test(group)) headers.push('Impersonate-Group', group);
  }
  if (config.extras) {
    headers.push(
      'Impersonate-Extra-keystone-user-id',
      extraValue(identity.user.id),
      'Impersonate-Extra-keystone-project-id',
      extraValue(identity.project.id),
      'Impersonate-Extra-keystone-project-name',
      extraValue(identity.project.name),
      'Impersonate-Extra-keystone-domain-id',
      extraValue(identity.project.domainId),
    );
  }
  return headers;
}

/**
 * The groups configured for a domain- or system-scoped token (by domain id or name), or undefined when this kind of
 * token is not mapped: the caller then gets 403. Such callers get only these groups, never project groups.
 */
export function scopeGroups(identity: ScopeOnlyIdentity, config: ImpersonationConfig): readonly string[] | undefined {
  const mapping = scopeMapping(identity, config);
  if (mapping === undefined) return undefined;
  if (Array.isArray(mapping)) return identity.roles.includes(SCOPE_LIST_ROLE) ? mapping : [];
  const groups = new Set<string>();
  for (const role of identity.roles) for (const g of (mapping as Readonly<Record<string, readonly string[]>>)[role] ?? []) groups.add(g);
  return [...groups];
}

/**
 * The role a token needs on its domain or the system for a plain list of groups. Keystone issues a domain- or
 * system-scoped token to anyone with any role there (`reader` included): a list given to every such token made a
 * domain reader act with the operator's admin groups.
 */
const SCOPE_LIST_ROLE = 'admin';

type ScopeMapping = NonNullable<ImpersonationConfig['systemScopeGroups']>;

function scopeMapping(identity: ScopeOnlyIdentity, config: ImpersonationConfig): ScopeMapping | undefined {
  if (identity.scope === 'system') return config.systemScopeGroups;
  const byDomain = config.domainScopeGroups;
  if (byDomain === undefined || identity.domain === undefined) return undefined;
  return byDomain[identity.domain.id] ?? byDomain[identity.domain.name];
}

/** Why a mapped domain- or system-scoped token gets no groups: none of its roles is mapped. */
export function unmappedRolesRefusal(identity: ScopeOnlyIdentity, config: ImpersonationConfig): string {
  const where = identity.scope === 'domain' ? `the domain '${identity.domain?.name ?? ''}'` : 'the system';
  const roles = identity.roles.length > 0 ? identity.roles.join(', ') : 'none';
  const mapping = scopeMapping(identity, config);
  const mapped = mapping === undefined ? [] : Array.isArray(mapping) ? [SCOPE_LIST_ROLE] : Object.keys(mapping);
  return `your roles on ${where} (${roles}) are not mapped to any Kubernetes group on this gateway (mapped: ${mapped.join(', ')}); use a project-scoped token, or ask the operator`;
}

export function scopeImpersonationHeaders(identity: ScopeOnlyIdentity, groups: readonly string[], config: ImpersonationConfig): string[] {
  const user = `${config.userPrefix}${identity.user.name}`;
  checkNotReserved(user);
  if (identity.user.name.length === 0 || !HEADER_SAFE.test(user)) {
    throw inexpressible(`the Keystone user name '${identity.user.name}' cannot be carried in an HTTP header; ask an operator`);
  }
  if (groups.length === 0) throw inexpressible(`no groups are configured for ${identity.scope}-scoped tokens`);
  const headers = ['Impersonate-User', user];
  for (const g of groups) headers.push('Impersonate-Group', g);
  if (config.extras) {
    headers.push('Impersonate-Extra-keystone-user-id', extraValue(identity.user.id), 'Impersonate-Extra-keystone-scope', identity.scope);
    if (identity.domain !== undefined) headers.push('Impersonate-Extra-keystone-domain-id', extraValue(identity.domain.id));
  }
  return headers;
}
