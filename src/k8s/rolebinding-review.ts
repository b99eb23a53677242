import { z } from 'zod';
import type { ImpersonationConfig } from '../config/schema.js';

/**
 * RoleBindings in project namespaces keep the namespace inside the Keystone world. A project admin (ClusterRole
 * `admin`) may bind roles in its namespace to any subject; bound to `system:unauthenticated`, `system:authenticated`
 * or `system:serviceaccounts`, or to another project's group, the namespace's objects are read and changed without the
 * gateway: nothing is audited, and revoking a Keystone role changes nothing. The gateway's validating webhook refuses
 * such subjects unless the operator allows them (`k8s.tenancy.bindingSubjects`). Pure.
 */

const subjectSchema = z.looseObject({ kind: z.string(), name: z.string(), namespace: z.string().optional(), apiGroup: z.string().optional() });
export const roleBindingSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string().optional(), generateName: z.string().optional() }).optional(),
  subjects: z.array(subjectSchema).nullish(),
});
export type Subject = z.infer<typeof subjectSchema>;

/** One entry of `k8s.tenancy.bindingSubjects`; a name ending in `*` allows every name that starts with the rest. */
export interface AllowedSubject {
  readonly kind: 'Group' | 'User' | 'ServiceAccount';
  readonly name: string;
  readonly namespace?: string | undefined;
}

/** Which project a namespace belongs to (its ownership label), or why the gateway cannot tell. */
export type NamespaceProject = { readonly projectId: string } | { readonly unknown: string };

export interface BindingSubjectPolicy {
  /** `k8s.impersonation.groupPrefix`: project groups are `<prefix>project:<id>` and `<prefix>project:<id>:role:<role>`. */
  readonly groupPrefix: string;
  readonly allowed: readonly AllowedSubject[];
  /**
   * Groups the gateway gives callers of other projects too (the tenant group every project's callers carry, the
   * groups of domain- and system-scoped tokens), each with whom it stands for: bound in a project namespace, they open
   * it to those callers.
   */
  readonly outsideGroups?: ReadonlyMap<string, string>;
}

/** The groups of `k8s.impersonation` that reach beyond one project, and whom each stands for (outsideGroups). */
export function outsideGroupsOf(impersonation: ImpersonationConfig): Map<string, string> {
  const groups = new Map<string, string>();
  const add = (mapping: ScopeGroups | undefined, who: string): void => {
    if (mapping === undefined) return;
    for (const group of Array.isArray(mapping) ? mapping : Object.values(mapping).flat()) if (!groups.has(group)) groups.set(group, who);
  };
  if (impersonation.tenantGroup !== undefined) groups.set(impersonation.tenantGroup, 'every caller of every project (k8s.impersonation.tenantGroup)');
  for (const [domain, mapping] of Object.entries(impersonation.domainScopeGroups ?? {})) add(mapping, `callers with tokens scoped to the domain ${domain} (k8s.impersonation.domainScopeGroups)`);
  add(impersonation.systemScopeGroups, 'callers with system-scoped tokens (k8s.impersonation.systemScopeGroups)');
  return groups;
}

type ScopeGroups = NonNullable<ImpersonationConfig['systemScopeGroups']>;

export interface RefusedSubject {
  readonly subject: Subject;
  readonly why: string;
}

const SYSTEM_WHY: Readonly<Record<string, string>> = {
  'system:unauthenticated': 'every caller without credentials',
  'system:authenticated': 'everyone the cluster authenticates, with any credential',
  'system:serviceaccounts': 'every service account of every namespace',
  'system:anonymous': 'every caller without credentials',
};

function allows(entry: AllowedSubject, s: Subject, namespace: string): boolean {
  if (entry.kind !== s.kind) return false;
  if (s.kind === 'ServiceAccount' && (entry.namespace ?? '') !== (s.namespace ?? namespace)) return false;
  return entry.name.endsWith('*') ? s.name.startsWith(entry.name.slice(0, -1)) : entry.name === s.name;
}

/** The project id a group of the gateway's form names, or undefined when the group is not a project group. */
function projectOfGroup(group: string, prefix: string): string | undefined {
  const head = `${prefix}project:`;
  if (!group.startsWith(head)) return undefined;
  const rest = group.slice(head.length);
  const colon = rest.indexOf(':');
  return colon === -1 ? rest : rest.slice(0, colon);
}

/** Why this subject may not be bound in `namespace`, or undefined when it may. */
function refusal(s: Subject, namespace: string, project: NamespaceProject, prefix: string, outside: ReadonlyMap<string, string>): string | undefined {
  const lower = s.name.toLowerCase();
  if (s.kind === 'ServiceAccount') {
    const saNamespace = s.namespace ?? namespace;
    return saNamespace === '' || saNamespace === namespace ? undefined : `a service account of namespace ${saNamespace}, outside this project`;
  }
  if (s.kind !== 'Group' && s.kind !== 'User') return `a subject of kind ${JSON.stringify(s.kind)}, which RBAC does not know`;
  if (lower.startsWith('system:')) {
    // The namespace's own service accounts are what a ServiceAccount subject names: the same rights, said another way.
    if (s.kind === 'Group' && s.name === `system:serviceaccounts:${namespace}`) return undefined;
    if (s.kind === 'User' && s.name.startsWith(`system:serviceaccount:${namespace}:`)) return undefined;
    const who = SYSTEM_WHY[lower];
    return `a ${s.kind === 'Group' ? 'group' : 'user'} of the cluster itself${who !== undefined ? ` (${who})` : ''}, outside Keystone`;
  }
  if (s.kind !== 'Group') return undefined;
  const beyond = outside.get(s.name);
  if (beyond !== undefined) return `a group the gateway gives ${beyond}, not only this project's`;
  const other = projectOfGroup(s.name, prefix);
  if (other === undefined) return undefined;
  if ('projectId' in project) return other === project.projectId ? undefined : `the group of another Keystone project (${other})`;
  return `a Keystone project's group, and the gateway cannot tell whether this namespace's project is that one (${project.unknown})`;
}

/**
 * The subjects a RoleBinding in a project namespace may not name. On an update only subjects it did not have before
 * count, so bindings that predate the webhook can still be changed.
 */
export function refusedSubjects(
  subjects: readonly Subject[],
  namespace: string,
  project: NamespaceProject,
  policy: BindingSubjectPolicy,
  before: readonly Subject[] = [],
): RefusedSubject[] {
  const key = (s: Subject): string => JSON.stringify([s.kind, s.name, s.namespace ?? ''] as const);
  const had = new Set(before.map(key));
  return subjects.flatMap((subject) => {
    if (had.has(key(subject)) || policy.allowed.some((a) => allows(a, subject, namespace))) return [];
    const why = refusal(subject, namespace, project, policy.groupPrefix, policy.outsideGroups ?? new Map());
    return why === undefined ? [] : [{ subject, why }];
  });
}

export function describeRefusedSubjects(bindingName: string, namespace: string, refused: readonly RefusedSubject[], policy: BindingSubjectPolicy): string {
  const each = refused.map(({ subject: s, why }) => `${s.kind} ${JSON.stringify(s.kind === 'ServiceAccount' ? `${s.namespace ?? namespace}/${s.name}` : s.name)}: ${why}`);
  return (
    `rolebinding ${JSON.stringify(bindingName)} in ${namespace} may not bind ${each.join('; ')}. A project namespace is reached through the gateway ` +
    `with Keystone credentials only: bind this project's groups (${policy.groupPrefix}project:<project id>:role:<role>) or its own service accounts, ` +
    'or ask the operator to allow the subject in k8s.tenancy.bindingSubjects'
  );
}
