import {
  ApiException,
  CoreV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1LimitRange,
  type V1Namespace,
  type V1ResourceQuota,
  type V1RoleBinding,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../auth/identity.js';
import { GatewayError, hasCode } from '../errors.js';
import type { ImpersonationConfig, PodSecurityLevel, TenancyConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { projectGroup, roleGroup } from './impersonation.js';

/** Labels and annotations that record what the gateway owns. Clients can never set them through the gateway's identity. */
export const PROJECT_LABEL = 'zun-gateway.openstack.org/project-id';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'zun-gateway';
export const PROJECT_NAME_ANNOTATION = 'zun-gateway.openstack.org/project-name';
export const DOMAIN_ANNOTATION = 'zun-gateway.openstack.org/domain-id';
export const BINDING_PREFIX = 'zun-gateway-';
/** Selects the namespaces whose pods the gateway's admission webhook checks (the chart's namespaceSelector). */
export const POD_SECURITY_LABEL = 'zun-gateway.openstack.org/pod-security';
/** The apiserver's own PodSecurity admission (Kubernetes 1.23+) enforces these by itself. */
export const PSA_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
export const PSA_ENFORCE_VERSION_LABEL = 'pod-security.kubernetes.io/enforce-version';
const QUOTA_NAME = 'zun-gateway-quota';
const LIMITS_NAME = 'zun-gateway-limits';

const DNS1123_MAX = 63;
const FAILURE_MEMORY_MS = 15_000;

/** The project's namespace can not be used: it belongs to someone else, or the cluster refused to make it. */
const tenancyError = (message: string, status: number): GatewayError => new GatewayError('namespace_unavailable', message, { status });

function dns1123(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * The namespace name for a project: the template with {project_id}, {project_name}, {domain_name}, made DNS-1123
 * safe; when that is empty or longer than 63 characters, `os-<project id>` made safe (Keystone ids are 32 hex).
 */
export function namespaceName(template: string, identity: Identity): string {
  const filled = template
    .replaceAll('{project_id}', identity.project.id)
    .replaceAll('{project_name}', identity.project.name)
    .replaceAll('{domain_name}', identity.project.domainName);
  const safe = dns1123(filled);
  if (safe.length > 0 && safe.length <= DNS1123_MAX) return safe;
  return dns1123(`os-${identity.project.id}`).slice(0, DNS1123_MAX);
}

/**
 * The labels the gateway stamps on every project namespace, besides ownership: the pod security level, for its own
 * webhook's namespaceSelector and for PodSecurity admission. Tenants cannot change them: edit and admin do not
 * grant updating namespaces.
 */
export function podSecurityLabels(level: PodSecurityLevel): Record<string, string> {
  return { [POD_SECURITY_LABEL]: level, [PSA_ENFORCE_LABEL]: level, [PSA_ENFORCE_VERSION_LABEL]: 'latest' };
}

function bindingName(role: string): string {
  return `${BINDING_PREFIX}${dns1123(role)}`.slice(0, 253);
}

/** The RoleBindings the gateway keeps in a project namespace: one per mapped Keystone role. */
export function desiredRoleBindings(
  namespace: string,
  identity: Identity,
  roleMap: Readonly<Record<string, string>>,
  impersonation: ImpersonationConfig,
): V1RoleBinding[] {
  return Object.entries(roleMap)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([role, clusterRole]) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: {
        name: bindingName(role),
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [PROJECT_LABEL]: identity.project.id },
        annotations: { 'zun-gateway.openstack.org/keystone-role': role },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [
        {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Group',
          name: roleGroup(projectGroup(identity.project.id, impersonation), role),
        },
      ],
    }));
}

const statusOf = (err: unknown): number | undefined => (err instanceof ApiException ? err.code : undefined);

function sameBinding(a: V1RoleBinding, b: V1RoleBinding): boolean {
  return (
    a.roleRef.name === b.roleRef.name &&
    a.roleRef.kind === b.roleRef.kind &&
    JSON.stringify((a.subjects ?? []).map((s) => [s.kind, s.name])) === JSON.stringify((b.subjects ?? []).map((s) => [s.kind, s.name]))
  );
}

export interface TenancyApis {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
}

export function tenancyApis(kc: KubeConfig): TenancyApis {
  return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api) };
}

/**
 * Makes sure a project's namespace exists, is the project's, and carries the RoleBindings of the role mapping.
 * Idempotent and safe with several replicas (every create tolerates AlreadyExists and re-reads); the outcome is cached
 * per project, so the hot path makes no apiserver call after the first request of a project.
 */
export class TenantProvisioner {
  private readonly done: LRUCache<string, { namespace: string; at: number }>;
  /** Refusals are remembered briefly, so a project whose namespace is taken does not cost apiserver calls per request. */
  private readonly failed: LRUCache<string, { error: GatewayError; at: number }>;
  private readonly pending = new Map<string, Promise<string>>();
  private readonly labels: Record<string, string>;
  private readonly names = new WeakMap<Identity, string>();

  constructor(
    private readonly apis: TenancyApis,
    private readonly config: TenancyConfig,
    private readonly impersonation: ImpersonationConfig,
    private readonly logger: Logger,
    private readonly onAction: (action: string, outcome?: 'ok' | 'error') => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.done = new LRUCache({ max: 10_000 });
    this.failed = new LRUCache({ max: 10_000 });
    this.labels = podSecurityLabels(config.podSecurity.level);
  }

  /** Every request of a project-scoped caller asks; identities come from the token cache as the same objects. */
  namespaceFor(identity: Identity): string {
    let name = this.names.get(identity);
    if (name === undefined) {
      name = namespaceName(this.config.namespaceTemplate, identity);
      this.names.set(identity, name);
    }
    return name;
  }

  /** The namespace, at once when this project was provisioned recently; otherwise a promise of it. */
  ensure(identity: Identity): string | Promise<string> {
    const key = identity.project.id;
    const hit = this.done.get(key);
    if (hit !== undefined && this.now() - hit.at < this.config.recheckSeconds * 1000) return hit.namespace;
    const refusal = this.failed.get(key);
    if (refusal !== undefined && this.now() - refusal.at < FAILURE_MEMORY_MS) return Promise.reject(refusal.error);
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.provision(identity)
        .then((namespace) => {
          this.done.set(key, { namespace, at: this.now() });
          this.failed.delete(key);
          return namespace;
        })
        .catch((err: unknown) => {
          if (hasCode(err, 'namespace_unavailable')) this.failed.set(key, { error: err, at: this.now() });
          throw err;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async provision(identity: Identity): Promise<string> {
    const namespace = this.namespaceFor(identity);
    try {
      await this.ensureNamespace(namespace, identity);
      await this.ensureRoleBindings(namespace, identity);
      if (this.config.resourceQuota !== undefined) await this.ensureQuota(namespace, identity);
      if (this.config.limitRange !== undefined) await this.ensureLimits(namespace, identity);
    } catch (err) {
      this.onAction('provision', 'error');
      if (hasCode(err, 'namespace_unavailable')) throw err;
      const code = statusOf(err);
      this.logger.error({ namespace, project: identity.project.id, code, err: (err as Error).message }, 'project namespace provisioning failed');
      throw tenancyError(
        code === 403
          ? `the gateway is not allowed to provision namespace ${namespace} (its ClusterRole lacks a permission); ask the operator`
          : `could not provision namespace ${namespace} for project ${identity.project.name}; retry shortly`,
        code === 403 ? 500 : 503,
      );
    }
    return namespace;
  }

  private async ensureNamespace(namespace: string, identity: Identity): Promise<void> {
    let existing: V1Namespace | undefined;
    try {
      existing = await this.apis.core.readNamespace({ name: namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (existing === undefined) {
      try {
        await this.apis.core.createNamespace({
          body: {
            metadata: {
              name: namespace,
              labels: { [PROJECT_LABEL]: identity.project.id, [MANAGED_BY_LABEL]: MANAGED_BY, ...this.labels },
              annotations: { [PROJECT_NAME_ANNOTATION]: identity.project.name, [DOMAIN_ANNOTATION]: identity.project.domainId },
            },
          },
        });
        this.onAction('namespace_created');
        this.logger.info({ namespace, project: identity.project.id }, 'created project namespace');
        return;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        existing = await this.apis.core.readNamespace({ name: namespace });
      }
    }
    const owner = existing.metadata?.labels?.[PROJECT_LABEL];
    if (owner !== undefined && owner !== identity.project.id && existing.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) {
      // The gateway made it for another project (not named here): one deleted and created again under this name, or
      // one of the same name in another domain. Saying "did not create" sent operators looking for a squatter.
      throw tenancyError(
        `namespace ${namespace} was provisioned for another Keystone project of this name (one deleted and created again, or one in another domain), ` +
          `not for project ${identity.project.name} (${identity.project.id}); the gateway never hands a project's namespace and its objects to another; ` +
          "ask the operator to delete the old project's namespace, or to put {project_id} or {domain_name} in the namespace template",
        403,
      );
    }
    if (owner !== identity.project.id) {
      throw tenancyError(
        `namespace ${namespace} already exists and is not owned by project ${identity.project.name} (${identity.project.id}); ` +
          'the gateway never adopts a namespace it did not create; ask the operator to rename the project namespace template or the namespace',
        403,
      );
    }
    if (existing.status?.phase === 'Terminating') {
      throw tenancyError(`namespace ${namespace} is being deleted; retry when it is gone`, 409);
    }
    await this.ensureLabels(namespace, existing);
  }

  /** Namespaces made before a label was introduced, or with another level, get the current labels (a merge patch). */
  private async ensureLabels(namespace: string, existing: V1Namespace): Promise<void> {
    const have = existing.metadata?.labels ?? {};
    const missing = Object.fromEntries(Object.entries(this.labels).filter(([k, v]) => have[k] !== v));
    if (Object.keys(missing).length === 0) return;
    await this.apis.core.patchNamespace(
      { name: namespace, body: { metadata: { labels: missing } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    this.onAction('namespace_labelled');
    this.logger.info({ namespace, labels: Object.keys(missing) }, 'labelled project namespace');
  }

  private async ensureRoleBindings(namespace: string, identity: Identity): Promise<void> {
    const desired = desiredRoleBindings(namespace, identity, this.config.roleBindings, this.impersonation);
    // Every binding of the namespace, not only the labelled ones: a project admin (ClusterRole admin) can update
    // RoleBindings, so one of the gateway's could have lost its label and had its subjects changed; selecting by label
    // missed it for good (the create answered 409 and the tampered binding stayed).
    const list = await this.apis.rbac.listNamespacedRoleBinding({ namespace });
    const byName = new Map(list.items.map((b) => [b.metadata?.name as string, b]));
    const stale = new Set(
      list.items
        .filter((b) => b.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY && b.metadata?.name?.startsWith(BINDING_PREFIX))
        .map((b) => b.metadata?.name as string),
    );
    for (const want of desired) {
      const name = want.metadata?.name as string;
      const have = byName.get(name);
      stale.delete(name);
      if (have !== undefined && sameBinding(have, want) && have.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) continue;
      if (have !== undefined) {
        // roleRef is immutable, and the binding may not be ours as made: replace it.
        try {
          await this.apis.rbac.deleteNamespacedRoleBinding({ name, namespace });
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
        this.onAction('rolebinding_replaced');
      }
      try {
        await this.apis.rbac.createNamespacedRoleBinding({ namespace, body: want });
        if (have === undefined) this.onAction('rolebinding_created');
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    }
    // What is left is ours but no longer in the mapping: remove it. Bindings made by others carry no managed-by label.
    for (const name of stale) {
      try {
        await this.apis.rbac.deleteNamespacedRoleBinding({ name, namespace });
        this.onAction('rolebinding_deleted');
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    }
  }

  private async ensureQuota(namespace: string, identity: Identity): Promise<void> {
    const body: V1ResourceQuota = {
      metadata: { name: QUOTA_NAME, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [PROJECT_LABEL]: identity.project.id } },
      spec: { hard: this.config.resourceQuota as Record<string, string> },
    };
    try {
      const have = await this.apis.core.readNamespacedResourceQuota({ name: QUOTA_NAME, namespace });
      if (JSON.stringify(have.spec?.hard ?? {}) === JSON.stringify(body.spec?.hard ?? {})) return;
      body.metadata = { ...body.metadata, resourceVersion: have.metadata?.resourceVersion as string };
      await this.apis.core.replaceNamespacedResourceQuota({ name: QUOTA_NAME, namespace, body });
      this.onAction('resourcequota_updated');
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.createTolerant(() => this.apis.core.createNamespacedResourceQuota({ namespace, body }));
      this.onAction('resourcequota_created');
    }
  }

  private async ensureLimits(namespace: string, identity: Identity): Promise<void> {
    const body: V1LimitRange = {
      metadata: { name: LIMITS_NAME, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [PROJECT_LABEL]: identity.project.id } },
      spec: { limits: [{ type: 'Container', ...(this.config.limitRange as object) }] },
    };
    try {
      const have = await this.apis.core.readNamespacedLimitRange({ name: LIMITS_NAME, namespace });
      if (JSON.stringify(have.spec) === JSON.stringify(body.spec)) return;
      body.metadata = { ...body.metadata, resourceVersion: have.metadata?.resourceVersion as string };
      await this.apis.core.replaceNamespacedLimitRange({ name: LIMITS_NAME, namespace, body });
      this.onAction('limitrange_updated');
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.createTolerant(() => this.apis.core.createNamespacedLimitRange({ namespace, body }));
      this.onAction('limitrange_created');
    }
  }

  private async createTolerant(create: () => Promise<unknown>): Promise<void> {
    try {
      await create();
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
  }
}
