import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { reviewPodAdmission, type AdmissionPolicy } from '../../src/k8s/pod-admission.js';
import { describeViolations, podSchema, podSecurityViolations, type Pod, type PodSecurityLevel } from '../../src/k8s/pod-security.js';
import { SharedImages } from '../../src/k8s/image-pull-policy.js';
import { SERVICE_REQUEST, admissionReview } from '../helpers/admission-review.js';

type Obj = Record<string, unknown>;

/** A pod with one ordinary container `main`; `spec` and `main` are merged in, `metadata` replaces the default. */
function pod(spec: Obj = {}, main: Obj = {}, metadata: Obj = { name: 'p' }): Obj {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: { containers: [{ name: 'main', image: 'busybox', ...main }], ...spec } };
}

function violations(object: Obj, level: PodSecurityLevel = 'baseline'): ReturnType<typeof podSecurityViolations> {
  return podSecurityViolations(podSchema.parse(object) as Pod, level);
}

/** The failing fields of each failing check, as `check: field` lines. */
function failing(object: Obj, level: PodSecurityLevel = 'baseline'): string[] {
  return violations(object, level).flatMap((v) => v.fields.map((f) => `${v.check}: ${f}`));
}

/** The restricted pod: passes every check of both levels. */
const RESTRICTED_MAIN: Obj = {
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
};

const review = (object: unknown, extra: Obj = {}): Obj => admissionReview(object, extra) as Obj;

interface Answer {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; status?: { code: number; reason: string; message: string } };
}
/** The pod security checks alone: images may come from the cache, subPath is allowed, no binding subject is allowed beyond the rules. */
const policyAt = (level: PodSecurityLevel): AdmissionPolicy => ({ level, subPath: { refuse: false }, bindings: { groupPrefix: 'keystone:', allowed: [] } });
const answer = (body: unknown, level: PodSecurityLevel = 'baseline'): Answer => reviewPodAdmission(body, policyAt(level)).review as Answer;

describe('pod security: the baseline checks, one field at a time', () => {
  it('an ordinary pod passes, with the allowed values of every checked field spelled out', () => {
    assert.deepEqual(failing(pod()), []);
    const allowedValues = pod(
      {
        hostNetwork: false,
        hostPID: false,
        hostIPC: false,
        volumes: [{ name: 'v', emptyDir: {} }, { name: 'c', configMap: { name: 'x' } }],
        securityContext: {
          seccompProfile: { type: 'RuntimeDefault' },
          seLinuxOptions: { type: 'container_t', level: 's0:c1,c2' },
          sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '1024 65535' }, { name: 'kernel.shm_rmid_forced', value: '1' }],
          windowsOptions: { hostProcess: false },
        },
      },
      {
        ports: [{ containerPort: 8080 }, { containerPort: 80, hostPort: 0 }],
        securityContext: {
          privileged: false,
          procMount: 'Default',
          capabilities: { add: ['NET_BIND_SERVICE', 'CHOWN', 'SYS_CHROOT'], drop: ['NET_RAW'] },
          seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' },
          appArmorProfile: { type: 'RuntimeDefault' },
        },
      },
      {
        name: 'p',
        annotations: {
          'container.apparmor.security.beta.kubernetes.io/main': 'runtime/default',
          'container.apparmor.security.beta.kubernetes.io/other': 'localhost/my-profile',
          'seccomp.security.alpha.kubernetes.io/pod': 'runtime/default',
        },
      },
    );
    assert.deepEqual(failing(allowedValues), []);
  });

  const refusedCases: Array<[string, Obj, RegExp]> = [
    ['hostNetwork', pod({ hostNetwork: true }), /^host namespaces: spec\.hostNetwork=true$/],
    ['hostPID', pod({ hostPID: true }), /^host namespaces: spec\.hostPID=true$/],
    ['hostIPC', pod({ hostIPC: true }), /^host namespaces: spec\.hostIPC=true$/],
    ['privileged', pod({}, { securityContext: { privileged: true } }), /^privileged: spec\.containers\[0\] "main" securityContext\.privileged=true$/],
    ['a capability beyond the baseline set', pod({}, { securityContext: { capabilities: { add: ['CHOWN', 'SYS_ADMIN'] } } }), /^capabilities: .*capabilities\.add=\["SYS_ADMIN"\]$/],
    ['hostPath', pod({ volumes: [{ name: 'ok', emptyDir: {} }, { name: 'root', hostPath: { path: '/' } }] }), /^hostPath volumes: spec\.volumes\[1\] "root" hostPath$/],
    ['hostPort', pod({}, { ports: [{ containerPort: 80, hostPort: 8080 }] }), /^hostPort: spec\.containers\[0\] "main" ports\[0\]\.hostPort=8080$/],
    ['hostProcess on the pod', pod({ securityContext: { windowsOptions: { hostProcess: true } } }), /^hostProcess: spec\.securityContext\.windowsOptions\.hostProcess=true$/],
    ['hostProcess on a container', pod({}, { securityContext: { windowsOptions: { hostProcess: true } } }), /^hostProcess: spec\.containers\[0\] "main" securityContext\.windowsOptions\.hostProcess=true$/],
    ['procMount Unmasked', pod({}, { securityContext: { procMount: 'Unmasked' } }), /^procMount: .*procMount="Unmasked"$/],
    ['seccomp Unconfined on the pod', pod({ securityContext: { seccompProfile: { type: 'Unconfined' } } }), /^seccompProfile: spec\.securityContext\.seccompProfile\.type="Unconfined"$/],
    ['seccomp Unconfined on a container', pod({}, { securityContext: { seccompProfile: { type: 'Unconfined' } } }), /^seccompProfile: spec\.containers\[0\] "main" securityContext\.seccompProfile\.type="Unconfined"$/],
    ['the seccomp pod annotation unconfined', pod({}, {}, { name: 'p', annotations: { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' } }), /^seccompProfile: metadata\.annotations\["seccomp\.security\.alpha\.kubernetes\.io\/pod"\]="unconfined"$/],
    ['the seccomp container annotation unconfined', pod({}, {}, { name: 'p', annotations: { 'container.seccomp.security.alpha.kubernetes.io/main': 'unconfined' } }), /^seccompProfile: metadata\.annotations/],
    ['SELinux type spc_t on the pod', pod({ securityContext: { seLinuxOptions: { type: 'spc_t' } } }), /^seLinuxOptions: spec\.securityContext\.seLinuxOptions\.type="spc_t"$/],
    ['SELinux user on a container', pod({}, { securityContext: { seLinuxOptions: { user: 'system_u' } } }), /^seLinuxOptions: .*seLinuxOptions\.user="system_u"$/],
    ['SELinux role on a container', pod({}, { securityContext: { seLinuxOptions: { role: 'sysadm_r' } } }), /^seLinuxOptions: .*seLinuxOptions\.role="sysadm_r"$/],
    ['an unsafe sysctl', pod({ securityContext: { sysctls: [{ name: 'kernel.shm_rmid_forced', value: '1' }, { name: 'kernel.msgmax', value: '1' }] } }), /^sysctls: spec\.securityContext\.sysctls\[1\]\.name="kernel\.msgmax"$/],
    ['an AppArmor annotation unconfined', pod({}, {}, { name: 'p', annotations: { 'container.apparmor.security.beta.kubernetes.io/main': 'unconfined' } }), /^AppArmor: metadata\.annotations\["container\.apparmor\.security\.beta\.kubernetes\.io\/main"\]="unconfined"$/],
    ['appArmorProfile Unconfined on the pod', pod({ securityContext: { appArmorProfile: { type: 'Unconfined' } } }), /^AppArmor: spec\.securityContext\.appArmorProfile\.type="Unconfined"$/],
    ['appArmorProfile Unconfined on a container', pod({}, { securityContext: { appArmorProfile: { type: 'Unconfined' } } }), /^AppArmor: spec\.containers\[0\] "main" securityContext\.appArmorProfile\.type="Unconfined"$/],
  ];
  for (const [what, object, expected] of refusedCases) {
    it(`refuses ${what}, naming the field`, () => {
      const lines = failing(object);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0] as string, expected);
    });
  }

  it('checks init and ephemeral containers like ordinary ones, naming each by its list, index and name', () => {
    const object = pod({
      initContainers: [{ name: 'setup', image: 'b', securityContext: { privileged: true } }],
      ephemeralContainers: [{ name: 'debugger', image: 'b', securityContext: { capabilities: { add: ['SYS_PTRACE'] } } }],
    });
    assert.deepEqual(failing(object), [
      'privileged: spec.initContainers[0] "setup" securityContext.privileged=true',
      'capabilities: spec.ephemeralContainers[0] "debugger" securityContext.capabilities.add=["SYS_PTRACE"]',
    ]);
  });

  it('the message names every violated field and what to change, in the manner of the apiserver\'s PodSecurity', () => {
    const object = pod({ hostPID: true, hostNetwork: true, volumes: [{ name: 'root', hostPath: { path: '/' } }] }, { securityContext: { privileged: true } });
    const message = describeViolations('evil', 'baseline', violations(object));
    assert.match(message, /^pod "evil" violates PodSecurity "baseline:latest"/);
    assert.match(message, /host namespaces \(spec\.hostNetwork=true, spec\.hostPID=true: remove hostNetwork, hostPID and hostIPC or set them to false/);
    assert.match(message, /privileged \(spec\.containers\[0\] "main" securityContext\.privileged=true: remove securityContext\.privileged or set it to false\)/);
    assert.match(message, /hostPath volumes \(spec\.volumes\[0\] "root" hostPath: use emptyDir, configMap, secret or a persistentVolumeClaim instead of hostPath\)/);
  });

  it('privileged checks nothing', () => {
    assert.deepEqual(failing(pod({ hostPID: true }, { securityContext: { privileged: true } }), 'privileged'), []);
  });
});

describe('pod security: the restricted checks', () => {
  it('a pod hardened as the standard asks passes; the same pod fails nothing at baseline', () => {
    const object = pod({ volumes: [{ name: 'v', emptyDir: {} }] }, RESTRICTED_MAIN);
    assert.deepEqual(failing(object, 'restricted'), []);
  });

  it('an ordinary pod fails each hardening check, naming the fields', () => {
    assert.deepEqual(failing(pod(), 'restricted'), [
      'allowPrivilegeEscalation != false: spec.containers[0] "main" securityContext.allowPrivilegeEscalation="unset"',
      'runAsNonRoot != true: spec.containers[0] "main" securityContext.runAsNonRoot="unset"',
      'seccompProfile (restricted): spec.containers[0] "main" securityContext.seccompProfile unset',
      'unrestricted capabilities: spec.containers[0] "main" securityContext.capabilities.drop does not include "ALL"',
    ]);
  });

  it('pod-level runAsNonRoot and seccompProfile cover every container; a container may not undo them', () => {
    const main = { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } };
    const covered = pod({ securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } }, main);
    assert.deepEqual(failing(covered, 'restricted'), []);
    const undone = pod({ securityContext: { runAsNonRoot: true, runAsUser: 0 } }, { securityContext: { ...RESTRICTED_MAIN.securityContext as Obj, runAsNonRoot: false, runAsUser: 0 } });
    assert.deepEqual(failing(undone, 'restricted'), [
      'runAsNonRoot != true: spec.containers[0] "main" securityContext.runAsNonRoot=false',
      'runAsUser=0: spec.securityContext.runAsUser=0',
      'runAsUser=0: spec.containers[0] "main" securityContext.runAsUser=0',
    ]);
  });

  it('refuses volume types beyond the restricted list and capabilities beyond NET_BIND_SERVICE', () => {
    const object = pod(
      { volumes: [{ name: 'nfs', nfs: { server: 'x', path: '/' } }, { name: 's', secret: { secretName: 'x' } }] },
      { securityContext: { ...(RESTRICTED_MAIN.securityContext as Obj), capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'CHOWN'] } } },
    );
    assert.deepEqual(failing(object, 'restricted'), [
      'volume types: spec.volumes[0] "nfs" nfs',
      'unrestricted capabilities: spec.containers[0] "main" securityContext.capabilities.add=["CHOWN"]',
    ]);
  });

  it('includes every baseline check', () => {
    assert.match(failing(pod({ hostPID: true }, RESTRICTED_MAIN), 'restricted').join('\n'), /host namespaces: spec\.hostPID=true/);
  });
});

describe('pod admission: AdmissionReview in, AdmissionReview out', () => {
  it('allows an ordinary pod: the answer carries the request uid', () => {
    assert.deepEqual(answer(review(pod())), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-1', allowed: true } });
  });

  it('refuses a pod with hostPath, hostPID and privileged: 403 with the message naming every field', () => {
    const res = answer(review(pod({ hostPID: true, volumes: [{ name: 'root', hostPath: { path: '/' } }] }, { securityContext: { privileged: true } }, { name: 'evil' })));
    assert.equal(res.response.allowed, false);
    assert.equal(res.response.uid, 'uid-1');
    assert.equal(res.response.status?.code, 403);
    assert.equal(res.response.status?.reason, 'Forbidden');
    assert.match(res.response.status?.message ?? '', /^pod "evil" violates PodSecurity "baseline:latest".*spec\.hostPID=true.*privileged=true.*"root" hostPath/);
  });

  it('names a pod made by a controller by its generateName', () => {
    const decision = reviewPodAdmission(review(pod({ hostNetwork: true }, {}, { generateName: 'web-5d8f-' })), policyAt('baseline'));
    assert.equal(decision.summary.pod, 'web-5d8f-');
    assert.deepEqual(decision.summary.checks, ['host namespaces']);
  });

  it('checks updates that change what the checks read; allows those that change only labels or images', () => {
    const old = pod({}, {}, { name: 'p', labels: { a: '1' } });
    const relabelled = pod({}, { image: 'busybox:2' }, { name: 'p', labels: { a: '2' } });
    assert.equal(answer(review(relabelled, { operation: 'UPDATE', oldObject: old })).response.allowed, true);
    const escalated = pod({}, { securityContext: { privileged: true } });
    assert.equal(answer(review(escalated, { operation: 'UPDATE', oldObject: old })).response.allowed, false);
    const unconfined = pod({}, {}, { name: 'p', annotations: { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' } });
    assert.equal(answer(review(unconfined, { operation: 'UPDATE', oldObject: old })).response.allowed, false);
  });

  it('an update of a pod that was already non-compliant changing only its labels is allowed (garbage collection, controllers)', () => {
    const old = pod({ hostNetwork: true }, {}, { name: 'p', labels: { a: '1' } });
    const now = pod({ hostNetwork: true }, {}, { name: 'p', labels: { a: '2' }, ownerReferences: [] });
    assert.equal(answer(review(now, { operation: 'UPDATE', oldObject: old })).response.allowed, true);
  });

  it('checks the ephemeralcontainers subresource: as a Pod (1.22+) and as the EphemeralContainers kind of 1.20 and 1.21', () => {
    const withDebugger = pod({ ephemeralContainers: [{ name: 'dbg', image: 'b', securityContext: { privileged: true } }] });
    const asPod = answer(review(withDebugger, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: pod() }));
    assert.equal(asPod.response.allowed, false);
    assert.match(asPod.response.status?.message ?? '', /spec\.ephemeralContainers\[0\] "dbg" securityContext\.privileged=true/);
    const legacy = {
      apiVersion: 'v1',
      kind: 'EphemeralContainers',
      metadata: { name: 'p' },
      ephemeralContainers: [{ name: 'dbg', image: 'b', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }],
    };
    const asKind = answer(review(legacy, { operation: 'UPDATE', subResource: 'ephemeralcontainers', kind: { group: '', version: 'v1', kind: 'EphemeralContainers' } }));
    assert.equal(asKind.response.allowed, false);
    assert.match(asKind.response.status?.message ?? '', /pod "p" .*spec\.ephemeralContainers\[0\] "dbg" securityContext\.capabilities\.add=\["SYS_ADMIN"\]/);
    const harmless = { ...legacy, ephemeralContainers: [{ name: 'dbg', image: 'b' }] };
    assert.equal(answer(review(harmless, { operation: 'UPDATE', subResource: 'ephemeralcontainers' })).response.allowed, true);
  });

  it('fails closed on a pod it cannot read: allowed=false with the field at fault', () => {
    const res = answer(review(pod({ hostNetwork: 'yes' })));
    assert.equal(res.response.allowed, false);
    assert.match(res.response.status?.message ?? '', /could not check this pod.*spec\.hostNetwork/);
    assert.equal(answer(review(undefined)).response.allowed, false, 'no object');
    assert.equal(answer(review({ metadata: { name: 'x' } })).response.allowed, false, 'no spec');
    assert.equal(answer(review(pod({ containers: [{ image: 'nameless' }] }))).response.allowed, false, 'a container without a name');
  });

  it('fails closed on resources it was not meant to see (a wrong webhook rule)', () => {
    const res = answer(review(pod(), { subResource: 'status' }));
    assert.equal(res.response.allowed, false);
    assert.match(res.response.status?.message ?? '', /only pods, pods\/ephemeralcontainers, services and rolebindings, not pods\/status/);
    const deployment = answer(review({}, { resource: { group: 'apps', version: 'v1', resource: 'deployments' } }));
    assert.equal(deployment.response.allowed, false);
  });

  it('refuses Services given new spec.externalIPs (CVE-2020-8554), at every level; other Services and unchanged ones pass', () => {
    const svc = (spec: Obj): Obj => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 443 }], ...spec } });
    const asService = { ...SERVICE_REQUEST, name: 'web' };
    for (const level of ['privileged', 'baseline', 'restricted'] as const) {
      const d = reviewPodAdmission(review(svc({ externalIPs: ['10.0.0.1'] }), asService), policyAt(level));
      assert.equal(d.allowed, false, level);
      assert.deepEqual(d.summary.checks, ['externalIPs']);
      assert.match(JSON.stringify(d.review), /spec\.externalIPs \(10\.0\.0\.1\) is not allowed in tenant namespaces.*CVE-2020-8554/);
    }
    assert.equal(answer(review(svc({}), asService)).response.allowed, true, 'no externalIPs');
    assert.equal(answer(review(svc({ type: 'NodePort', externalIPs: null }), asService)).response.allowed, true, 'null');
    const old = svc({ externalIPs: ['192.0.2.9'] });
    assert.equal(answer(review(svc({ externalIPs: ['192.0.2.9'], selector: { a: 'b' } }), { ...asService, operation: 'UPDATE', oldObject: old })).response.allowed, true, 'kept from before');
    assert.equal(answer(review(svc({ externalIPs: ['192.0.2.9', '10.0.0.1'] }), { ...asService, operation: 'UPDATE', oldObject: old })).response.allowed, false, 'one added');
    assert.equal(answer(review(svc({ externalIPs: 'x' }), asService)).response.allowed, false, 'unreadable: refused');
    assert.equal(answer(review(undefined, { ...asService, operation: 'DELETE' })).response.allowed, true);
    assert.equal(answer(review(svc({}), { ...asService, subResource: 'status' })).response.allowed, false, 'services/status is not its business');
  });

  it('throws GatewayError (400) for what it cannot answer: not a v1 AdmissionReview, no uid, no request', () => {
    const malformed: unknown[] = [
      null,
      'text',
      [],
      {},
      { ...review(pod()), apiVersion: 'admission.k8s.io/v1beta1' },
      { ...review(pod()), kind: 'Pod' },
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      review(pod(), { uid: '' }),
      review(pod(), { uid: 7 }),
      review(pod(), { resource: 'pods' }),
      review(pod(), { operation: undefined }),
    ];
    for (const body of malformed) {
      assert.throws(() => reviewPodAdmission(body, policyAt('baseline')), (e: unknown) => e instanceof GatewayError && e.code === 'review_invalid' && e.status === 400, JSON.stringify(body));
    }
  });

  it('allows DELETE and CONNECT without reading the object, and everything at privileged', () => {
    assert.equal(answer(review(undefined, { operation: 'DELETE' })).response.allowed, true);
    assert.equal(answer(review(pod({ hostPID: true })), 'privileged').response.allowed, true);
  });

  it('restricted refuses what baseline allows', () => {
    assert.equal(answer(review(pod()), 'baseline').response.allowed, true);
    const res = answer(review(pod()), 'restricted');
    assert.equal(res.response.allowed, false);
    assert.match(res.response.status?.message ?? '', /PodSecurity "restricted:latest".*allowPrivilegeEscalation/);
  });
});

describe('pod admission: subPath on an affected cluster, images from the node cache', () => {
  const subPathPod = () => pod({ volumes: [{ name: 'v', emptyDir: {} }] }, { volumeMounts: [{ name: 'v', mountPath: '/m', subPath: 'link' }] }, { name: 'sp' });
  const because = 'this cluster runs Kubernetes v1.20.2, which is affected by CVE-2021-25741 (fixed in 1.19.15, 1.20.11, 1.21.5, 1.22.2 (and every release from 1.23))';
  const refusing: AdmissionPolicy = { ...policyAt('baseline'), subPath: { refuse: true, because } };

  it('refuses subPath while the rule says so, naming the mount, the CVE and the fixed versions; allows it otherwise', () => {
    const d = reviewPodAdmission(review(subPathPod()), refusing);
    assert.equal(d.allowed, false);
    assert.deepEqual(d.summary.checks, ['subPath']);
    assert.equal(d.logMessage, 'pod refused by subPath (CVE-2021-25741)');
    const message = (d.review as Answer).response.status?.message ?? '';
    assert.match(message, /^pod "sp" mounts volumes with subPath \(spec\.containers\[0\] "main" volumeMounts\[0\]\.subPath="link"\), which this cluster's project namespaces refuse: this cluster runs Kubernetes v1\.20\.2, which is affected by CVE-2021-25741 \(fixed in 1\.19\.15, 1\.20\.11, 1\.21\.5, 1\.22\.2/);
    assert.equal(reviewPodAdmission(review(subPathPod()), policyAt('baseline')).allowed, true, 'a fixed cluster');
    assert.equal(reviewPodAdmission(review(pod()), refusing).allowed, true, 'no subPath');
  });

  it('subPath is not checked at privileged (hostPath is allowed there anyway); one message for every reason', () => {
    assert.equal(reviewPodAdmission(review(subPathPod()), { ...refusing, level: 'privileged' }).allowed, true);
    const both = reviewPodAdmission(review(pod({ hostPID: true, volumes: [{ name: 'v', emptyDir: {} }] }, { volumeMounts: [{ name: 'v', mountPath: '/m', subPathExpr: '$(X)' }] })), refusing);
    assert.deepEqual(both.summary.checks, ['host namespaces', 'subPath']);
    assert.match((both.review as Answer).response.status?.message ?? '', /violates PodSecurity .*spec\.hostPID=true.*\. pod "p" mounts volumes with subPath \(.*subPathExpr="\$\(X\)"/);
  });

  const pulling: AdmissionPolicy = { ...policyAt('baseline'), alwaysPull: new SharedImages(['local/busybox']) };

  it('refuses a pod that would run an unshared image from the cache (the mutating webhook was not registered), at every level', () => {
    for (const level of ['privileged', 'baseline'] as const) {
      const d = reviewPodAdmission(review(pod({}, { image: '127.0.0.1:5000/secret/app:1', imagePullPolicy: 'IfNotPresent' }, { name: 'bob' })), { ...pulling, level });
      assert.equal(d.allowed, false, level);
      assert.deepEqual(d.summary.checks, ['imagePullPolicy']);
      assert.match(
        (d.review as Answer).response.status?.message ?? '',
        /^pod "bob" would run images from the node's cache without asking their registry \(spec\.containers\[0\] "main" image "127\.0\.0\.1:5000\/secret\/app:1" imagePullPolicy=IfNotPresent\).*k8s\.tenancy\.sharedImages.*set imagePullPolicy: Always/,
      );
    }
    assert.equal(reviewPodAdmission(review(pod({}, { image: 'x', imagePullPolicy: 'Always' })), pulling).allowed, true);
    assert.equal(reviewPodAdmission(review(pod({}, { image: 'local/busybox:latest', imagePullPolicy: 'Never' })), pulling).allowed, true, 'shared: its own policy');
    assert.equal(reviewPodAdmission(review(pod({}, { image: 'x', imagePullPolicy: 'Never' })), policyAt('baseline')).allowed, true, 'alwaysPullImages off');
  });

  it('a pod update giving a container a new image without Always is refused (its policy cannot change: recreate it); unchanged images pass', () => {
    const old = pod({}, { image: 'local/busybox', imagePullPolicy: 'IfNotPresent' });
    const swapped = reviewPodAdmission(review(pod({}, { image: 'registry.example/secret:1', imagePullPolicy: 'IfNotPresent' }), { operation: 'UPDATE', oldObject: old }), pulling);
    assert.equal(swapped.allowed, false);
    assert.match((swapped.review as Answer).response.status?.message ?? '', /imagePullPolicy cannot change on an update: delete the pod and create it again/);
    const predates = pod({}, { image: 'app:1', imagePullPolicy: 'IfNotPresent' }, { name: 'p', labels: { a: '1' } });
    const relabelled = pod({}, { image: 'app:1', imagePullPolicy: 'IfNotPresent' }, { name: 'p', labels: { a: '2' } });
    assert.equal(reviewPodAdmission(review(relabelled, { operation: 'UPDATE', oldObject: predates }), pulling).allowed, true);
  });
});
