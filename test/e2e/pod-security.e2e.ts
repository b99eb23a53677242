import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { e2eEnv } from './support/env.js';
import { sharedGateway } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import { createProjectWithMember, deleteProject } from './support/keystone-admin.js';
import { adminKubectl, kubectl, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { POD_SECURITY_LABEL, registerPodSecurityWebhook, type RegisteredWebhook } from './support/pod-webhook.js';

/**
 * A tenant (member -> edit) on the real kube-apiserver 1.20, which has no PodSecurity admission of its own: the
 * gateway's webhook is all that stands between the tenant's pod spec and root on the node.
 */

const jsonpathLabel = (key: string): string => `jsonpath={.metadata.labels.${key.replaceAll('.', '\\.')}}`;

function podYaml(name: string, spec: string, container = ''): string {
  return `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 1
${spec}
  containers:
  - name: main
    image: ${e2eEnv().busyboxImage}
    imagePullPolicy: Never
    command: [sleep, '3600']
${container}`;
}

describe('pod security: the webhook refuses host escapes from tenant namespaces (real apiserver, real kubectl)', function () {
  this.timeout(180_000);
  const name = `podsec-${randomBytes(3).toString('hex')}`;
  const namespace = `os-${name}`;
  let projectId: string;
  let tenant: string;
  let webhook: RegisteredWebhook | undefined;
  const k = (args: readonly string[], input?: string) => kubectl(tenant, ['-n', namespace, ...args], input !== undefined ? { input } : {});

  before(async () => {
    projectId = await createProjectWithMember(name, 'alice');
    tenant = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', name)).token, namespace);
    await mustSucceed(k(['get', 'pods']), 'the first request provisions the namespace');
    webhook = await registerPodSecurityWebhook(sharedGateway(), [projectId], namespace);
  });
  after(async () => {
    await webhook?.remove();
    if (projectId !== undefined) await deleteProject(projectId);
    await adminKubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
  });

  it('the provisioned namespace carries the webhook label and the PodSecurity enforce labels', async () => {
    const labels = JSON.parse(await mustSucceed(adminKubectl(['get', 'namespace', namespace, '-o', 'jsonpath={.metadata.labels}']), 'labels')) as Record<string, string>;
    assert.equal(labels[POD_SECURITY_LABEL], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/enforce-version'], 'latest');
  });

  it('the tenant cannot remove the label: edit does not update namespaces', async () => {
    const res = await kubectl(tenant, ['label', 'namespace', namespace, `${POD_SECURITY_LABEL}-`]);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /forbidden/i);
  });

  it('kubectl apply of a pod with hostPath /, hostPID, hostNetwork and privileged is refused with the gateway\'s message naming each', async () => {
    const evil = podYaml(
      'evil',
      `  hostPID: true
  hostNetwork: true
  volumes: [{name: root, hostPath: {path: /}}]`,
      `    securityContext: {privileged: true}
    volumeMounts: [{name: root, mountPath: /host}]`,
    );
    const res = await k(['apply', '-f', '-'], evil);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /admission webhook "pods\.e2e\.zun-gateway\.openstack\.org" denied the request: pod "evil" violates PodSecurity "baseline:latest"/);
    for (const field of ['spec.hostNetwork=true', 'spec.hostPID=true', 'spec.containers[0] "main" securityContext.privileged=true', 'spec.volumes[0] "root" hostPath']) {
      assert.ok(res.stderr.includes(field), `${field} not named in: ${res.stderr}`);
    }
    assert.match(res.stderr, /use emptyDir, configMap, secret or a persistentVolumeClaim instead of hostPath/);
    const pods = await mustSucceed(k(['get', 'pods', '-o', 'name']), 'list pods');
    assert.doesNotMatch(pods, /evil/);
  });

  for (const [what, spec, container] of [
    ['hostPath /', '  volumes: [{name: root, hostPath: {path: /}}]', ''],
    ['hostPID', '  hostPID: true', ''],
    ['hostNetwork', '  hostNetwork: true', ''],
    ['privileged', '', '    securityContext: {privileged: true}'],
  ] as const) {
    it(`each alone is refused: ${what}`, async () => {
      const res = await k(['apply', '-f', '-'], podYaml('one-escape', spec, container));
      assert.notEqual(res.code, 0, res.stdout);
      assert.match(res.stderr, /denied the request: pod "one-escape" violates PodSecurity/);
    });
  }

  it('a Deployment whose template has hostPath gets no pod: its ReplicaSet records FailedCreate with the message', async () => {
    const container = { name: 'main', image: e2eEnv().busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'], volumeMounts: [{ name: 'root', mountPath: '/host' }] };
    const template = { metadata: { labels: { app: 'sneaky' } }, spec: { volumes: [{ name: 'root', hostPath: { path: '/' } }], containers: [container] } };
    const deployment = JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'sneaky' }, spec: { replicas: 1, selector: { matchLabels: { app: 'sneaky' } }, template } });
    await mustSucceed(k(['apply', '-f', '-'], deployment), 'the Deployment itself is accepted');
    let events = '';
    for (let i = 0; i < 60 && !/FailedCreate/.test(events); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      events = await mustSucceed(
        k(['get', 'events', '--field-selector', 'involvedObject.kind=ReplicaSet,reason=FailedCreate', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}']),
        'events',
      );
    }
    assert.match(events, /FailedCreate: .*denied the request: pod "sneaky-[a-z0-9-]+" violates PodSecurity "baseline:latest".*spec\.volumes\[0\] "root" hostPath/);
    const pods = await mustSucceed(k(['get', 'pods', '-l', 'app=sneaky', '-o', 'name']), 'pods of the Deployment');
    assert.equal(pods.trim(), '');
    await k(['delete', 'deployment', 'sneaky', '--wait=false']);
  });

  it('a Service with spec.externalIPs (CVE-2020-8554: the apiserver ClusterIP, a node address) is refused; ordinary Services are created', async () => {
    const svc = (name: string, extra: string): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{port: 443}]
${extra}`;
    const refused = await k(['apply', '-f', '-'], svc('intercept', '  externalIPs: [10.0.0.1, 192.0.2.2]'));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied the request: service "intercept": spec\.externalIPs \(10\.0\.0\.1, 192\.0\.2\.2\) is not allowed in tenant namespaces/);
    const gone = await k(['get', 'service', 'intercept']);
    assert.match(gone.stderr, /NotFound/, 'nothing was created');
    await mustSucceed(k(['apply', '-f', '-'], svc('plain', '')), 'an ordinary Service');
    const patched = await k(['patch', 'service', 'plain', '-p', JSON.stringify({ spec: { externalIPs: ['10.0.0.1'] } })]);
    assert.notEqual(patched.code, 0, 'adding externalIPs later is refused too');
    assert.match(patched.stderr, /spec\.externalIPs \(10\.0\.0\.1\) is not allowed/);
    await mustSucceed(k(['delete', 'service', 'plain']), 'delete');
  });

  it('an ordinary pod (no hostNetwork) is admitted, runs, and exec works', async () => {
    await mustSucceed(k(['apply', '-f', '-'], podYaml('ordinary', '')), 'apply the ordinary pod');
    // This env's kubelet has no pod network: it re-creates the sandbox of a pod without hostNetwork about every 30 s
    // (SandboxChanged), killing the container each time. Running and exec work between those, so exec is retried.
    let out = '';
    for (let i = 0; i < 10 && out !== 'inside\n'; i += 1) {
      await k(['wait', '--for=condition=Ready', 'pod/ordinary', '--timeout=60s']);
      out = (await k(['exec', 'ordinary', '--', 'echo', 'inside'])).stdout;
    }
    assert.equal(out, 'inside\n');
    // A change of labels on an admitted pod is an UPDATE the webhook allows.
    await mustSucceed(k(['label', 'pod', 'ordinary', 'touched=yes']), 'label the pod');
    await k(['delete', 'pod', 'ordinary', '--wait=false']);
  });
});

describe('pod security: a namespace provisioned before the labels existed gets them on the next check', function () {
  this.timeout(120_000);

  it('the gateway adds the labels, keeping the namespace and its other labels', async () => {
    const canPatch = await adminKubectl(['auth', 'can-i', 'patch', 'namespaces', '--as', 'zun-gateway']);
    assert.equal(
      canPatch.stdout.trim(),
      'yes',
      "the e2e env's gateway identity lacks patch on namespaces: its ClusterRole is older than the chart's; test/e2e/env/up re-applies it",
    );
    const name = `oldns-${randomBytes(3).toString('hex')}`;
    const namespace = `os-${name}`;
    const projectId = await createProjectWithMember(name, 'alice');
    try {
      // As a gateway without this change made it: the ownership labels, nothing else, plus one of the operator's.
      const old = {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace, labels: { 'zun-gateway.openstack.org/project-id': projectId, 'app.kubernetes.io/managed-by': 'zun-gateway', team: 'kept' } },
      };
      await mustSucceed(adminKubectl(['create', '-f', '-'], JSON.stringify(old)), 'the old namespace');
      const tenant = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', name)).token, namespace);
      await mustSucceed(kubectl(tenant, ['get', 'pods']), "the project's first request to this gateway");
      const labels = JSON.parse(await mustSucceed(adminKubectl(['get', 'namespace', namespace, '-o', 'jsonpath={.metadata.labels}']), 'labels')) as Record<string, string>;
      assert.equal(labels[POD_SECURITY_LABEL], 'baseline');
      assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
      assert.equal(labels['pod-security.kubernetes.io/enforce-version'], 'latest');
      assert.equal(labels.team, 'kept');
      assert.equal(await mustSucceed(adminKubectl(['get', 'namespace', namespace, '-o', jsonpathLabel('zun-gateway.openstack.org/project-id')]), 'owner'), projectId);
    } finally {
      await deleteProject(projectId);
      await adminKubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
    }
  });
});
