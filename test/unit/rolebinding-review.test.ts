import assert from 'node:assert/strict';
import type { CoreV1Api, V1Namespace } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node';
import { admissionWebhook } from '../../src/k8s/admission-webhook.js';
import { NamespaceProjects } from '../../src/k8s/namespace-projects.js';
import { reviewPodAdmission, type AdmissionPolicy } from '../../src/k8s/pod-admission.js';
import { outsideGroupsOf, refusedSubjects, type BindingSubjectPolicy, type NamespaceProject, type Subject } from '../../src/k8s/rolebinding-review.js';
import { PROJECT_LABEL } from '../../src/k8s/tenancy.js';
import type { TenancyConfig } from '../../src/config/schema.js';
import { admissionReview } from '../helpers/admission-review.js';

const GAMMA = '0123456789abcdef0123456789abcdef';
const BETA = 'fedcba9876543210fedcba9876543210';
const NS = 'os-gamma';
const policy: BindingSubjectPolicy = { groupPrefix: 'keystone:', allowed: [] };
const group = (name: string): Subject => ({ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name });
const user = (name: string): Subject => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name });
const sa = (name: string, namespace?: string): Subject => ({ kind: 'ServiceAccount', name, ...(namespace !== undefined ? { namespace } : {}) });
const refused = (subjects: Subject[], p: BindingSubjectPolicy = policy, project: NamespaceProject = { projectId: GAMMA }, before: Subject[] = []): string[] =>
  refusedSubjects(subjects, NS, project, p, before).map((r) => `${r.subject.kind} ${r.subject.name}: ${r.why}`);

describe('RoleBindings in project namespaces: which subjects', () => {
  it("allows the project's own groups, its own service accounts, and users", () => {
    assert.deepEqual(
      refused([
        group(`keystone:project:${GAMMA}`),
        group(`keystone:project:${GAMMA}:role:member`),
        sa('deployer'),
        sa('deployer', NS),
        sa('deployer', ''),
        group(`system:serviceaccounts:${NS}`),
        user(`system:serviceaccount:${NS}:deployer`),
        user('keystone:erin'),
      ]),
      [],
    );
  });

  it("refuses system: groups and users (what erin tried), other namespaces' service accounts, other projects' groups", () => {
    assert.deepEqual(
      refused([
        group('system:unauthenticated'),
        group('system:authenticated'),
        group('system:serviceaccounts'),
        group('system:masters'),
        group('System:Authenticated'),
        user('system:anonymous'),
        user('system:serviceaccount:kube-system:default'),
        group('system:serviceaccounts:kube-system'),
        sa('default', 'kube-system'),
        group(`keystone:project:${BETA}`),
        group(`keystone:project:${BETA}:role:admin`),
        group(`keystone:project:${GAMMA}x`),
      ]),
      [
        'Group system:unauthenticated: a group of the cluster itself (every caller without credentials), outside Keystone',
        'Group system:authenticated: a group of the cluster itself (everyone the cluster authenticates, with any credential), outside Keystone',
        'Group system:serviceaccounts: a group of the cluster itself (every service account of every namespace), outside Keystone',
        'Group system:masters: a group of the cluster itself, outside Keystone',
        'Group System:Authenticated: a group of the cluster itself (everyone the cluster authenticates, with any credential), outside Keystone',
        'User system:anonymous: a user of the cluster itself (every caller without credentials), outside Keystone',
        'User system:serviceaccount:kube-system:default: a user of the cluster itself, outside Keystone',
        'Group system:serviceaccounts:kube-system: a group of the cluster itself, outside Keystone',
        'ServiceAccount default: a service account of namespace kube-system, outside this project',
        `Group keystone:project:${BETA}: the group of another Keystone project (${BETA})`,
        `Group keystone:project:${BETA}:role:admin: the group of another Keystone project (${BETA})`,
        `Group keystone:project:${GAMMA}x: the group of another Keystone project (${GAMMA}x)`,
      ],
    );
  });

  it('the impersonation groupPrefix decides what a project group looks like', () => {
    const os = { groupPrefix: 'os:', allowed: [] };
    assert.deepEqual(refused([group(`os:project:${GAMMA}:role:admin`)], os), []);
    assert.equal(refused([group(`os:project:${BETA}`)], os).length, 1);
    assert.deepEqual(refused([group(`keystone:project:${BETA}`)], os), [], 'not a project group under this prefix');
  });

  it('when the namespace owner is unknown, every project group counts as foreign, saying why', () => {
    assert.deepEqual(refused([group(`keystone:project:${GAMMA}`)], policy, { unknown: 'namespace os-gamma has no label' }), [
      `Group keystone:project:${GAMMA}: a Keystone project's group, and the gateway cannot tell whether this namespace's project is that one (namespace os-gamma has no label)`,
    ]);
  });

  it('k8s.tenancy.bindingSubjects allows by kind and exact name, or a name prefix ending in *', () => {
    const allowing: BindingSubjectPolicy = {
      groupPrefix: 'keystone:',
      allowed: [
        { kind: 'Group', name: `keystone:project:${BETA}` },
        { kind: 'Group', name: 'shared:*' },
        { kind: 'ServiceAccount', namespace: 'monitoring', name: 'prometheus' },
      ],
    };
    assert.deepEqual(refused([group(`keystone:project:${BETA}`), group('shared:readers'), sa('prometheus', 'monitoring')], allowing), []);
    assert.equal(refused([user(`keystone:project:${BETA}`), group(`keystone:project:${BETA}:role:admin`), sa('prometheus', 'other')], allowing).length, 2, 'a User of that name is no project group; kind, name and namespace must all match');
  });

  it("refuses the groups the gateway gives callers of other projects too: the tenant group (every project's callers), domain and system scope groups", () => {
    const impersonation = {
      userPrefix: 'keystone:',
      groupPrefix: 'keystone:',
      extras: true,
      tenantGroup: 'keystone:tenants',
      domainScopeGroups: { Default: { reader: ['domain-readers'], admin: ['domain-admins'] } },
      systemScopeGroups: ['cloud-admins'],
    };
    const withOutside: BindingSubjectPolicy = { groupPrefix: 'keystone:', allowed: [], outsideGroups: outsideGroupsOf(impersonation) };
    assert.deepEqual(refused([group('keystone:tenants'), group('domain-readers'), group('cloud-admins')], withOutside), [
      "Group keystone:tenants: a group the gateway gives every caller of every project (k8s.impersonation.tenantGroup), not only this project's",
      "Group domain-readers: a group the gateway gives callers with tokens scoped to the domain Default (k8s.impersonation.domainScopeGroups), not only this project's",
      "Group cloud-admins: a group the gateway gives callers with system-scoped tokens (k8s.impersonation.systemScopeGroups), not only this project's",
    ]);
    assert.deepEqual(refused([user('keystone:tenants'), group('keystone:tenants-other')], withOutside), [], 'a user of that name, another group');
    assert.deepEqual(refused([group('keystone:tenants')], { ...withOutside, allowed: [{ kind: 'Group', name: 'keystone:tenants' }] }), [], 'unless allowed');
  });

  it('on an update only subjects it did not have before count', () => {
    const before = [group('system:authenticated')];
    assert.deepEqual(refused([group('system:authenticated'), group(`keystone:project:${GAMMA}`)], policy, { projectId: GAMMA }, before), []);
    assert.equal(refused([group('system:authenticated'), group('system:unauthenticated')], policy, { projectId: GAMMA }, before).length, 1);
  });
});

describe('RoleBindings through the validating webhook', () => {
  const RB_REQUEST = { kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding' }, resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings' }, namespace: NS };
  const binding = (subjects: Subject[]): unknown => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'open', namespace: NS },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects,
  });
  const full: AdmissionPolicy = { level: 'baseline', subPath: { refuse: false }, bindings: policy };

  it('refuses naming each subject and the setting; allows an ordinary binding', () => {
    const d = reviewPodAdmission(admissionReview(binding([group('system:unauthenticated'), group(`keystone:project:${BETA}`)]), { ...RB_REQUEST, name: 'open' }), full, { projectId: GAMMA });
    assert.equal(d.allowed, false);
    assert.equal(d.summary.rolebinding, 'open');
    assert.equal(d.logMessage, 'rolebinding refused (subjects)');
    const message = (d.review as { response: { status: { message: string } } }).response.status.message;
    assert.match(message, /^rolebinding "open" in os-gamma may not bind Group "system:unauthenticated": a group of the cluster itself \(every caller without credentials\), outside Keystone; Group "keystone:project:fedcba/);
    assert.match(message, /bind this project's groups \(keystone:project:<project id>:role:<role>\) or its own service accounts, or ask the operator to allow the subject in k8s\.tenancy\.bindingSubjects$/);
    assert.equal(reviewPodAdmission(admissionReview(binding([group(`keystone:project:${GAMMA}:role:member`)]), RB_REQUEST), full, { projectId: GAMMA }).allowed, true);
    assert.equal(reviewPodAdmission(admissionReview(binding([]), RB_REQUEST), full, { projectId: GAMMA }).allowed, true, 'no subjects');
  });

  it('at every pod security level (privileged too); DELETE passes; an unreadable binding is refused', () => {
    const open = admissionReview(binding([group('system:authenticated')]), RB_REQUEST);
    assert.equal(reviewPodAdmission(open, { ...full, level: 'privileged' }, { projectId: GAMMA }).allowed, false);
    assert.equal(reviewPodAdmission(admissionReview(undefined, { ...RB_REQUEST, operation: 'DELETE' }), full, { projectId: GAMMA }).allowed, true);
    assert.equal(reviewPodAdmission(admissionReview({ subjects: [{ kind: 'Group' }] }, RB_REQUEST), full, { projectId: GAMMA }).allowed, false);
  });

  it("the webhook looks the namespace's project up only for RoleBindings naming a project group", async () => {
    const asked: string[] = [];
    const tenancy = { podSecurity: { level: 'baseline' }, alwaysPullImages: true, sharedImages: [], subPath: 'auto', bindingSubjects: [] } as unknown as TenancyConfig;
    const hook = admissionWebhook(tenancy, { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true }, {
      version: () => ({ known: true, gitVersion: 'v1.22.2' }),
      projectOf: async (ns) => (asked.push(ns), { projectId: GAMMA }),
    });
    assert.equal((await hook.validate(admissionReview(binding([group(`keystone:project:${GAMMA}`)]), RB_REQUEST))).allowed, true);
    assert.equal((await hook.validate(admissionReview(binding([group(`keystone:project:${BETA}`)]), RB_REQUEST))).allowed, false);
    await hook.validate(admissionReview({ metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'x', imagePullPolicy: 'Always' }] } }));
    assert.equal((await hook.validate(admissionReview(binding([group('system:authenticated'), sa('x')]), RB_REQUEST))).allowed, false);
    assert.equal((await hook.validate(admissionReview(binding([user('keystone:erin')]), RB_REQUEST))).allowed, true);
    assert.deepEqual(asked, [NS, NS]);
  });
});

describe("a namespace's project, read from its ownership label", () => {
  function core(answer: () => V1Namespace): { api: CoreV1Api; reads: () => number } {
    let reads = 0;
    const api = { readNamespace: async () => (reads++, answer()) } as unknown as CoreV1Api;
    return { api, reads: () => reads };
  }

  it('reads the label once and remembers it', async () => {
    const c = core(() => ({ metadata: { name: NS, labels: { [PROJECT_LABEL]: GAMMA } } }));
    const projects = new NamespaceProjects({ core: c.api });
    assert.deepEqual(await projects.projectOf(NS), { projectId: GAMMA });
    assert.deepEqual(await projects.projectOf(NS), { projectId: GAMMA });
    assert.equal(c.reads(), 1);
  });

  it('joins concurrent reads of one namespace, and reads at most a few namespaces at once (the webhook path needs no credentials)', async () => {
    const waiting: Array<() => void> = [];
    let reads = 0;
    const api = {
      readNamespace: ({ name }: { name: string }) =>
        new Promise<V1Namespace>((resolve) => {
          reads += 1;
          waiting.push(() => resolve({ metadata: { name, labels: { [PROJECT_LABEL]: `id-${name}` } } }));
        }),
    } as unknown as CoreV1Api;
    const projects = new NamespaceProjects({ core: api }, 60_000, 2);
    const same = [projects.projectOf('a'), projects.projectOf('a'), projects.projectOf('b')];
    assert.deepEqual(await projects.projectOf('c'), { unknown: 'the gateway is reading 2 namespaces already; retry shortly' });
    assert.equal(reads, 2);
    for (const release of waiting) release();
    assert.deepEqual(await Promise.all(same), [{ projectId: 'id-a' }, { projectId: 'id-a' }, { projectId: 'id-b' }]);
    const c = projects.projectOf('c');
    waiting[2]?.();
    assert.deepEqual(await c, { projectId: 'id-c' }, 'room again once the reads are done');
  });

  it('a namespace without the label, missing, or a failed read, is unknown in the same words (the caller learns nothing of which), and a failure is not remembered', async () => {
    const unknown = { unknown: 'the gateway could not read which project the namespace belongs to' };
    assert.deepEqual(await new NamespaceProjects({ core: core(() => ({ metadata: { name: NS } })).api }).projectOf(NS), unknown);
    const missing = core(() => {
      throw new ApiException(404, 'Not Found', {}, {});
    });
    const failures: unknown[] = [];
    assert.deepEqual(await new NamespaceProjects({ core: missing.api }, undefined, undefined, (err) => failures.push(err)).projectOf(NS), unknown);
    assert.equal(failures.length, 0, 'a missing namespace is not a failure to log');
    const c = core(() => {
      throw new ApiException(403, 'Forbidden', {}, {});
    });
    const projects = new NamespaceProjects({ core: c.api }, undefined, undefined, (err) => failures.push(err));
    assert.deepEqual(await projects.projectOf(NS), unknown);
    assert.equal(failures.length, 1, 'a refused read is logged for the operator');
    await projects.projectOf(NS);
    assert.equal(c.reads(), 2);
  });
});
