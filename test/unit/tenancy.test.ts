import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { ApiException, type V1Namespace, type V1RoleBinding, type V1ResourceQuota, type V1LimitRange } from '@kubernetes/client-node';
import type { Identity } from '../../src/auth/identity.js';
import type { ImpersonationConfig, TenancyConfig } from '../../src/config/schema.js';
import { MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, POD_SECURITY_LABEL, TenantProvisioner, podSecurityLabels, namespaceName, type TenancyApis } from '../../src/k8s/tenancy.js';
import { silentLogger } from '../../src/observability/logger.js';

const impersonation: ImpersonationConfig = { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true };

function identity(projectName = 'alpha', projectId = '0123456789abcdef0123456789abcdef'): Identity {
  return {
    user: { id: 'u1', name: 'alice', domainId: 'default', domainName: 'Default' },
    project: { id: projectId, name: projectName, domainId: 'default', domainName: 'Default' },
    roles: ['member', 'reader'],
    expiresAt: new Date(Date.now() + 3600_000),
  };
}

const notFound = () => new ApiException(404, 'not found', {}, {});
const conflict = () => new ApiException(409, 'exists', {}, {});

/** An in-memory apiserver for the handful of calls the provisioner makes; counts every call. */
class FakeCluster {
  namespaces = new Map<string, V1Namespace>();
  bindings = new Map<string, V1RoleBinding>();
  quotas = new Map<string, V1ResourceQuota>();
  limits = new Map<string, V1LimitRange>();
  calls: string[] = [];
  /** Simulates another replica creating the namespace between our read and our create. */
  raceOnCreate: V1Namespace | undefined;

  apis(): TenancyApis {
    const self = this;
    const core = {
      async readNamespace({ name }: { name: string }) {
        self.calls.push(`readNamespace ${name}`);
        const ns = self.namespaces.get(name);
        if (!ns) throw notFound();
        return ns;
      },
      async createNamespace({ body }: { body: V1Namespace }) {
        self.calls.push(`createNamespace ${body.metadata?.name}`);
        if (self.raceOnCreate) {
          self.namespaces.set(body.metadata?.name as string, self.raceOnCreate);
          self.raceOnCreate = undefined;
          throw conflict();
        }
        if (self.namespaces.has(body.metadata?.name as string)) throw conflict();
        self.namespaces.set(body.metadata?.name as string, body);
        return body;
      },
      async patchNamespace({ name, body }: { name: string; body: V1Namespace }, options: unknown) {
        self.calls.push(`patchNamespace ${name}`);
        assert.ok(options !== undefined, 'the patch names its content type (merge patch)');
        const ns = self.namespaces.get(name);
        if (!ns) throw notFound();
        const merged = { ...ns, metadata: { ...ns.metadata, labels: { ...ns.metadata?.labels, ...body.metadata?.labels } } };
        self.namespaces.set(name, merged);
        return merged;
      },
      async readNamespacedResourceQuota({ name, namespace }: { name: string; namespace: string }) {
        const q = self.quotas.get(`${namespace}/${name}`);
        if (!q) throw notFound();
        return q;
      },
      async createNamespacedResourceQuota({ namespace, body }: { namespace: string; body: V1ResourceQuota }) {
        self.calls.push('createResourceQuota');
        self.quotas.set(`${namespace}/${body.metadata?.name}`, body);
        return body;
      },
      async replaceNamespacedResourceQuota({ name, namespace, body }: { name: string; namespace: string; body: V1ResourceQuota }) {
        self.calls.push('replaceResourceQuota');
        self.quotas.set(`${namespace}/${name}`, body);
        return body;
      },
      async readNamespacedLimitRange({ name, namespace }: { name: string; namespace: string }) {
        const l = self.limits.get(`${namespace}/${name}`);
        if (!l) throw notFound();
        return l;
      },
      async createNamespacedLimitRange({ namespace, body }: { namespace: string; body: V1LimitRange }) {
        self.calls.push('createLimitRange');
        self.limits.set(`${namespace}/${body.metadata?.name}`, body);
        return body;
      },
      async replaceNamespacedLimitRange({ name, namespace, body }: { name: string; namespace: string; body: V1LimitRange }) {
        self.limits.set(`${namespace}/${name}`, body);
        return body;
      },
    };
    const rbac = {
      async listNamespacedRoleBinding({ namespace, labelSelector }: { namespace: string; labelSelector?: string }) {
        self.calls.push(`listRoleBindings ${namespace}`);
        const [k, v] = (labelSelector ?? '').split('=');
        const items = [...self.bindings.values()].filter(
          (b) => b.metadata?.namespace === namespace && (k === undefined || k === '' || b.metadata?.labels?.[k] === v),
        );
        return { items };
      },
      async createNamespacedRoleBinding({ namespace, body }: { namespace: string; body: V1RoleBinding }) {
        self.calls.push(`createRoleBinding ${body.metadata?.name}`);
        const key = `${namespace}/${body.metadata?.name}`;
        if (self.bindings.has(key)) throw conflict();
        self.bindings.set(key, body);
        return body;
      },
      async deleteNamespacedRoleBinding({ name, namespace }: { name: string; namespace: string }) {
        self.calls.push(`deleteRoleBinding ${name}`);
        if (!self.bindings.delete(`${namespace}/${name}`)) throw notFound();
        return {};
      },
    };
    return { core, rbac } as unknown as TenancyApis;
  }
}

function tenancy(overrides: Partial<TenancyConfig> = {}): TenancyConfig {
  return {
    namespaceTemplate: 'os-{project_name}',
    roleBindings: { admin: 'admin', member: 'edit', reader: 'view' },
    recheckSeconds: 600,
    podSecurity: { level: 'baseline' },
    alwaysPullImages: true,
    sharedImages: [],
    subPath: 'auto',
    bindingSubjects: [],
    ...overrides,
  };
}

describe('tenancy: project namespaces and role bindings', () => {
  describe('namespaceName', () => {
    it('fills the template and makes it DNS-1123 safe', () => {
      assert.equal(namespaceName('os-{project_name}', identity('Team_Alpha.Prod')), 'os-team-alpha-prod');
      assert.equal(namespaceName('{domain_name}-{project_name}', identity('x')), 'default-x');
      assert.equal(namespaceName('p-{project_id}', identity()), 'p-0123456789abcdef0123456789abcdef');
    });

    it('falls back to the project id when the name is too long or empty', () => {
      assert.equal(namespaceName('os-{project_name}', identity('a'.repeat(80))), 'os-0123456789abcdef0123456789abcdef');
      assert.equal(namespaceName('{project_name}', identity('___')), 'os-0123456789abcdef0123456789abcdef');
    });
  });

  it('creates the namespace with the owning project label, and one RoleBinding per mapped role', async () => {
    const cluster = new FakeCluster();
    const p = new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger());
    const ns = await p.ensure(identity());
    assert.equal(ns, 'os-alpha');
    assert.equal(cluster.namespaces.get('os-alpha')?.metadata?.labels?.[PROJECT_LABEL], identity().project.id);
    const bindings = [...cluster.bindings.values()];
    assert.deepEqual(bindings.map((b) => b.roleRef.name).sort(), ['admin', 'edit', 'view']);
    const member = cluster.bindings.get('os-alpha/zun-gateway-member');
    assert.equal(member?.subjects?.[0]?.name, `keystone:project:${identity().project.id}:role:member`);
    assert.equal(member?.subjects?.[0]?.kind, 'Group');
    assert.equal(member?.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY);
  });

  it('labels a new namespace with the pod security level: for its own webhook and for PodSecurity admission', async () => {
    const cluster = new FakeCluster();
    await new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger()).ensure(identity());
    const labels = cluster.namespaces.get('os-alpha')?.metadata?.labels ?? {};
    assert.equal(labels[POD_SECURITY_LABEL], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/enforce-version'], 'latest');
    assert.ok(!cluster.calls.some((c) => c.startsWith('patchNamespace')), 'made with its labels, not patched after');
  });

  it('adds the labels to a namespace provisioned before them on the next check, once, keeping its other labels', async () => {
    const cluster = new FakeCluster();
    const old = { [PROJECT_LABEL]: identity().project.id, [MANAGED_BY_LABEL]: MANAGED_BY, team: 'a' };
    cluster.namespaces.set('os-alpha', { metadata: { name: 'os-alpha', labels: old } });
    let now = 0;
    const p = new TenantProvisioner(cluster.apis(), tenancy({ recheckSeconds: 1 }), impersonation, silentLogger(), undefined, () => now);
    await p.ensure(identity());
    assert.deepEqual(cluster.namespaces.get('os-alpha')?.metadata?.labels, { ...old, ...podSecurityLabels('baseline') });
    now += 2000;
    await p.ensure(identity());
    assert.equal(cluster.calls.filter((c) => c.startsWith('patchNamespace')).length, 1, 'labels in place: no second patch');
    const restricted = new TenantProvisioner(cluster.apis(), tenancy({ podSecurity: { level: 'restricted' } }), impersonation, silentLogger());
    await restricted.ensure(identity());
    assert.equal(cluster.namespaces.get('os-alpha')?.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted', 'a changed level is applied');
  });

  it('never adopts an existing namespace it does not own: 403 saying why', async () => {
    const cluster = new FakeCluster();
    cluster.namespaces.set('kube-system', { metadata: { name: 'kube-system' } });
    cluster.namespaces.set('os-beta', { metadata: { name: 'os-beta', labels: { [PROJECT_LABEL]: 'someone-else' } } });
    const p = new TenantProvisioner(cluster.apis(), tenancy({ namespaceTemplate: '{project_name}' }), impersonation, silentLogger());
    await assert.rejects(
      async () => p.ensure(identity('kube-system')),
      (err: unknown) => err instanceof GatewayError && err.status === 403 && /not owned by project kube-system/.test(err.message),
    );
    await assert.rejects(async () => p.ensure(identity('os-beta')), (err: unknown) => err instanceof GatewayError && err.status === 403);
    assert.equal(cluster.bindings.size, 0, 'no binding was made in a namespace the gateway does not own');
  });

  it('a project deleted and created again (a new id) is refused its old namespace, and told why', async () => {
    const cluster = new FakeCluster();
    await new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger()).ensure(identity('alpha', 'a'.repeat(32)));
    const recreated = identity('alpha', 'b'.repeat(32));
    await assert.rejects(
      async () => new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger()).ensure(recreated),
      (err: unknown) =>
        err instanceof GatewayError && err.status === 403 && /provisioned for another Keystone project of this name/.test(err.message) && !err.message.includes('a'.repeat(32)),
    );
    assert.ok(![...cluster.bindings.values()].some((b) => b.subjects?.some((s) => s.name.includes('b'.repeat(32)))), 'no binding for the new project');
  });

  it('tolerates another replica creating the namespace at the same moment', async () => {
    const cluster = new FakeCluster();
    cluster.raceOnCreate = { metadata: { name: 'os-alpha', labels: { [PROJECT_LABEL]: identity().project.id } } };
    const p = new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger());
    assert.equal(await p.ensure(identity()), 'os-alpha');
  });

  it('is cached: after the first request a project costs no apiserver call, and concurrent first requests share one', async () => {
    const cluster = new FakeCluster();
    const p = new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger());
    const all = await Promise.all(Array.from({ length: 20 }, () => p.ensure(identity())));
    assert.ok(all.every((n) => n === 'os-alpha'));
    assert.equal(cluster.calls.filter((c) => c.startsWith('createNamespace')).length, 1);
    const before = cluster.calls.length;
    const again = p.ensure(identity());
    assert.equal(again, 'os-alpha', 'a cached project is answered synchronously');
    assert.equal(cluster.calls.length, before);
  });

  it('updates bindings when the mapping changes, removes stale managed ones, never touches others', async () => {
    const cluster = new FakeCluster();
    await new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger()).ensure(identity());
    cluster.bindings.set('os-alpha/made-by-operator', {
      metadata: { name: 'made-by-operator', namespace: 'os-alpha' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'User', name: 'bob', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    const changed = tenancy({ roleBindings: { member: 'admin', operator: 'view' } });
    await new TenantProvisioner(cluster.apis(), changed, impersonation, silentLogger()).ensure(identity());
    const names = [...cluster.bindings.keys()].sort();
    assert.deepEqual(names, ['os-alpha/made-by-operator', 'os-alpha/zun-gateway-member', 'os-alpha/zun-gateway-operator']);
    assert.equal(cluster.bindings.get('os-alpha/zun-gateway-member')?.roleRef.name, 'admin');
    assert.equal(cluster.bindings.get('os-alpha/made-by-operator')?.roleRef.name, 'view');
  });

  it('repairs one of its bindings a project admin unlabelled and re-pointed (it was never restored: the create got 409)', async () => {
    const cluster = new FakeCluster();
    let now = 0;
    const p = new TenantProvisioner(cluster.apis(), tenancy({ recheckSeconds: 1 }), impersonation, silentLogger(), undefined, () => now);
    await p.ensure(identity());
    const reader = cluster.bindings.get('os-alpha/zun-gateway-reader') as V1RoleBinding;
    // What `kubectl label rolebinding zun-gateway-reader app.kubernetes.io/managed-by-` and a patch of its subjects leave.
    cluster.bindings.set('os-alpha/zun-gateway-reader', {
      ...reader,
      metadata: { ...reader.metadata, labels: {} },
      subjects: [{ kind: 'Group', name: 'keystone:project:another-project:role:member', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    now += 2000;
    await p.ensure(identity());
    const repaired = cluster.bindings.get('os-alpha/zun-gateway-reader');
    assert.equal(repaired?.subjects?.[0]?.name, `keystone:project:${identity().project.id}:role:reader`);
    assert.equal(repaired?.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY);
    const calls = cluster.calls.length;
    now += 2000;
    await p.ensure(identity());
    assert.ok(!cluster.calls.slice(calls).some((c) => /^(create|delete)RoleBinding/.test(c)), 'nothing to repair: no change');
  });

  it('remembers a refusal briefly instead of asking the apiserver on every request', async () => {
    const cluster = new FakeCluster();
    cluster.namespaces.set('os-alpha', { metadata: { name: 'os-alpha' } });
    const p = new TenantProvisioner(cluster.apis(), tenancy(), impersonation, silentLogger());
    await assert.rejects(async () => p.ensure(identity()), GatewayError);
    const calls = cluster.calls.length;
    await assert.rejects(async () => p.ensure(identity()), GatewayError);
    assert.equal(cluster.calls.length, calls);
  });

  it('creates the configured ResourceQuota and LimitRange', async () => {
    const cluster = new FakeCluster();
    const config = tenancy({ resourceQuota: { pods: '10' }, limitRange: { default: { memory: '256Mi' } } });
    await new TenantProvisioner(cluster.apis(), config, impersonation, silentLogger()).ensure(identity());
    assert.deepEqual(cluster.quotas.get('os-alpha/zun-gateway-quota')?.spec?.hard, { pods: '10' });
    assert.deepEqual(cluster.limits.get('os-alpha/zun-gateway-limits')?.spec?.limits?.[0]?.type, 'Container');
  });
});
