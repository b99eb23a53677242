import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { engineDocker } from './support/docker-cli.js';
import { e2eEnv, e2eRegistry } from './support/env.js';
import { sharedGateway, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import { createProjectWithMember, createUserWithProject, deleteProject, deleteUser, passwordToken } from './support/keystone-admin.js';
import { adminKubectl, kubectl, kubectlBackground, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { registerPodSecurityWebhook, type RegisteredWebhook } from './support/pod-webhook.js';
import { rememberSecret } from './support/secrets.js';

/**
 * The gateway's admission webhooks registered at the real kube-apiserver 1.20.2 (kubelet on the real dockerd), driven
 * by tenants' kubectl through the gateway: subPath refused on this affected version (CVE-2021-25741), RoleBindings
 * that would open a project namespace outside Keystone refused (issue 31), and imagePullPolicy forced to Always so no
 * project runs another's private image from the node's cache (issue 23).
 */

const suffix = (): string => randomBytes(3).toString('hex');

/** Runs every clean-up step even when one fails (a shared environment must not keep what a failed step left), then reports the first failure. */
async function cleanUp(...steps: Array<() => Promise<unknown>>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw failures[0];
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** GET on the apiserver with no credentials at all (what `curl -k` without a token does): the status code. */
function anonymousGet(path: string): Promise<number> {
  const { kubeServer, kubeCa } = e2eEnv();
  return new Promise((resolve, reject) => {
    const req = https.get(`${kubeServer}${path}`, { ca: readFileSync(kubeCa), timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
  });
}

describe('admission: subPath is refused on this affected apiserver (CVE-2021-25741)', function () {
  this.timeout(180_000);
  const name = `subpath-${suffix()}`;
  const namespace = `os-${name}`;
  let projectId: string | undefined;
  let tenant: string;
  let webhook: RegisteredWebhook | undefined;
  const k = (args: readonly string[], input?: string) => kubectl(tenant, ['-n', namespace, ...args], input !== undefined ? { input } : {});
  const pod = (podName: string, mount: object): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName },
      spec: {
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'scratch', emptyDir: {} }],
        containers: [{ name: 'main', image: e2eEnv().busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'], volumeMounts: [{ name: 'scratch', mountPath: '/m', ...mount }] }],
      },
    });

  before(async () => {
    projectId = await createProjectWithMember(name, 'alice');
    tenant = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', name)).token, namespace);
    await mustSucceed(k(['get', 'pods']), 'the first request provisions the namespace');
    webhook = await registerPodSecurityWebhook(sharedGateway(), [projectId], namespace);
  });
  after(() =>
    cleanUp(
      async () => webhook?.remove(),
      async () => projectId !== undefined && deleteProject(projectId),
      () => adminKubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']),
    ),
  );

  it('the apiserver reports v1.20.2, an affected version', async () => {
    const version = JSON.parse(await mustSucceed(adminKubectl(['get', '--raw', '/version']), 'version')) as { gitVersion: string };
    assert.equal(version.gitVersion, 'v1.20.2');
  });

  it('a pod mounting with subPath (and one with subPathExpr) is refused, naming the CVE, the version and the fixed versions', async () => {
    const res = await k(['apply', '-f', '-'], pod('sub', { subPath: 'link' }));
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(
      res.stderr,
      /denied the request: pod "sub" mounts volumes with subPath \(spec\.containers\[0\] "main" volumeMounts\[0\]\.subPath="link"\).*this cluster runs Kubernetes v1\.20\.2, which is affected by CVE-2021-25741 \(fixed in 1\.19\.15, 1\.20\.11, 1\.21\.5, 1\.22\.2/,
    );
    const expr = await k(['apply', '-f', '-'], pod('subexpr', { subPathExpr: '$(HOSTNAME)' }));
    assert.notEqual(expr.code, 0, expr.stdout);
    assert.match(expr.stderr, /subPathExpr="\$\(HOSTNAME\)".*CVE-2021-25741/);
    assert.doesNotMatch(await mustSucceed(k(['get', 'pods', '-o', 'name']), 'pods'), /sub/);
  });

  it('the same pod mounting the whole volume is admitted (control)', async () => {
    await mustSucceed(k(['create', '--dry-run=server', '-f', '-'], pod('whole', {})), 'the pod without subPath');
  });
});

describe("admission: a project admin cannot open the project's namespace to everyone (RoleBindings)", function () {
  this.timeout(180_000);
  const erin = `erin-${suffix()}`;
  const namespace = `os-${erin}`;
  const password = rememberSecret(randomBytes(12).toString('hex'));
  let gamma: { userId: string; projectId: string } | undefined;
  let otherProject: string | undefined;
  let tenant: string;
  let webhook: RegisteredWebhook | undefined;
  const open = `open-${suffix()}`;
  const k = (args: readonly string[]) => kubectl(tenant, ['-n', namespace, ...args]);

  before(async () => {
    // erin is the admin of her project ("gamma"); another project exists beside it.
    gamma = await createUserWithProject(erin, password, 'admin');
    otherProject = await createProjectWithMember(`${erin}-other`, 'bob');
    tenant = tenantKubeconfig(sharedGateway().url, await passwordToken(erin, password, erin), namespace);
    await mustSucceed(k(['get', 'rolebindings']), 'the first request provisions the namespace (an admin may list RoleBindings)');
    await mustSucceed(k(['create', 'configmap', 'inside', '--from-literal=k=v']), 'something in the namespace to list');
    webhook = await registerPodSecurityWebhook(sharedGateway(), [gamma.projectId], namespace);
  });
  after(() =>
    cleanUp(
      async () => webhook?.remove(),
      () => adminKubectl(['delete', 'namespace', `${namespace}-control`, '--wait=false', '--ignore-not-found']),
      async () => otherProject !== undefined && deleteProject(otherProject),
      async () => gamma !== undefined && deleteProject(gamma.projectId),
      async () => gamma !== undefined && deleteUser(gamma.userId),
      () => adminKubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']),
    ),
  );

  for (const [subject, why] of [
    ['system:unauthenticated', /a group of the cluster itself \(every caller without credentials\), outside Keystone/],
    ['system:authenticated', /a group of the cluster itself \(everyone the cluster authenticates, with any credential\), outside Keystone/],
    ['system:serviceaccounts', /a group of the cluster itself \(every service account of every namespace\), outside Keystone/],
  ] as const) {
    it(`kubectl create rolebinding --clusterrole=view --group=${subject} is refused, naming the subject and the setting`, async () => {
      const res = await k(['create', 'rolebinding', open, '--clusterrole=view', `--group=${subject}`]);
      assert.notEqual(res.code, 0, res.stdout);
      assert.match(res.stderr, new RegExp(`denied the request: rolebinding "${open}" in ${namespace} may not bind Group "${subject}": `));
      assert.match(res.stderr, why);
      assert.match(res.stderr, /ask the operator to allow the subject in k8s\.tenancy\.bindingSubjects/);
    });
  }

  it("another project's keystone:project:<id> group is refused too", async () => {
    const group = `keystone:project:${otherProject ?? ''}`;
    const res = await k(['create', 'rolebinding', open, '--clusterrole=view', `--group=${group}`]);
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(res.stderr, new RegExp(`may not bind Group "${group}": the group of another Keystone project \\(${otherProject ?? ''}\\)`));
    assert.match((await k(['get', 'rolebindings', '-o', 'name'])).stdout, /zun-gateway-admin/, 'the list works');
    assert.doesNotMatch((await k(['get', 'rolebindings', '-o', 'name'])).stdout, new RegExp(open), 'nothing was created');
  });

  it("a binding inside the project (its own role group, its own service account) is created, and one added later to it is still checked", async () => {
    const member = `keystone:project:${gamma?.projectId ?? ''}:role:member`;
    await mustSucceed(k(['create', 'rolebinding', 'members-view', '--clusterrole=view', `--group=${member}`, `--serviceaccount=${namespace}:default`]), 'an ordinary binding');
    const patched = await k(['patch', 'rolebinding', 'members-view', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/subjects/-', value: { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' } }])]);
    assert.notEqual(patched.code, 0, patched.stdout);
    assert.match(patched.stderr, /may not bind Group "system:authenticated"/);
    await mustSucceed(k(['delete', 'rolebinding', 'members-view']), 'delete it');
  });

  it('anonymous access to the namespace is still refused (403); the same binding where no webhook looks lets anonymous callers list (control)', async () => {
    assert.equal(await anonymousGet(`/api/v1/namespaces/${namespace}/configmaps`), 403, "this apiserver's anonymous auth is on: system:anonymous is refused by RBAC");
    // The control proves the probe sees a leak: a namespace the gateway did not provision (no webhook), bound by the
    // cluster admin exactly as erin tried, answers anonymous callers.
    const control = `${namespace}-control`;
    await mustSucceed(adminKubectl(['create', 'namespace', control]), 'a scratch namespace');
    await mustSucceed(adminKubectl(['create', 'rolebinding', 'open', '-n', control, '--clusterrole=view', '--group=system:unauthenticated']), 'the binding');
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i += 1) {
      status = await anonymousGet(`/api/v1/namespaces/${control}/configmaps`);
      if (status !== 200) await sleep(250);
    }
    assert.equal(status, 200, 'with the binding, anonymous callers list the ConfigMaps');
  });
});

describe('admission: a project admin cannot open the namespace to every tenant through the tenant group (flowControl)', function () {
  this.timeout(180_000);
  const erin = `erin-${suffix()}`;
  const namespace = `os-${erin}`;
  const tenants = `keystone:tenants-${suffix()}`;
  const password = rememberSecret(randomBytes(12).toString('hex'));
  let gamma: { userId: string; projectId: string } | undefined;
  let gw: GatewayProcess | undefined;
  let webhook: RegisteredWebhook | undefined;
  let erinConfig: string;
  let bobConfig: string;

  before(async () => {
    // The chart's flowControl gives every tenant this group (k8s.impersonation.tenantGroup).
    gw = await startGateway({ cacheTtlSeconds: 300, k8s: [`impersonation: {tenantGroup: ${JSON.stringify(tenants)}}`] });
    gamma = await createUserWithProject(erin, password, 'admin');
    erinConfig = tenantKubeconfig(gw.url, await passwordToken(erin, password, erin), namespace);
    bobConfig = tenantKubeconfig(gw.url, (await issueToken('bob', 'beta')).token, namespace);
    await mustSucceed(kubectl(erinConfig, ['get', 'rolebindings']), 'the first request provisions the namespace');
    await mustSucceed(kubectl(erinConfig, ['create', 'configmap', 'inside', '--from-literal=k=v']), 'something in the namespace to list');
    webhook = await registerPodSecurityWebhook(gw, [gamma.projectId], namespace);
  });
  after(() =>
    cleanUp(
      async () => webhook?.remove(),
      async () => gamma !== undefined && deleteProject(gamma.projectId),
      async () => gamma !== undefined && deleteUser(gamma.userId),
      () => adminKubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']),
      async () => gw?.stop(),
    ),
  );

  it('kubectl create rolebinding --group=<the tenant group> is refused naming the setting; bob, of another project, still cannot list', async () => {
    const res = await kubectl(erinConfig, ['create', 'rolebinding', 'all-tenants', '--clusterrole=view', `--group=${tenants}`]);
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(res.stderr, new RegExp(`may not bind Group "${tenants}": a group the gateway gives every caller of every project \\(k8s\\.impersonation\\.tenantGroup\\)`));
    const bob = await kubectl(bobConfig, ['get', 'configmaps']);
    assert.notEqual(bob.code, 0, bob.stdout);
    assert.match(bob.stderr, /forbidden/i);
  });
});

describe("admission: images are pulled with the pod's own credentials (no private image from the node's cache)", function () {
  this.timeout(300_000);
  const alphaName = `pull-a-${suffix()}`;
  const betaName = `pull-b-${suffix()}`;
  const alphaNs = `os-${alphaName}`;
  const betaNs = `os-${betaName}`;
  const control = `${betaNs}-control`;
  let alpha: string | undefined;
  let beta: string | undefined;
  let alice: string;
  let bob: string;
  let webhook: RegisteredWebhook | undefined;
  let cachedBefore = false;

  const podJson = (name: string, image: string, policy: string, extra: object = {}): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image, imagePullPolicy: policy, command: ['sh', '-c', 'cat /secret.txt 2>/dev/null || echo no-secret-file; sleep 3600'] }],
        ...extra,
      },
    });
  const jsonpath = (kubeconfig: string, ns: string, pod: string, path: string) => kubectl(kubeconfig, ['-n', ns, 'get', 'pod', pod, '-o', `jsonpath=${path}`]);

  /**
   * The pod's first container state (as JSON) once `until` holds, read from a watch (`kubectl get -w`): each change
   * the apiserver reports is one line, so nothing is polled. At most two minutes.
   */
  async function containerState(kubeconfig: string, ns: string, pod: string, until: (state: string) => boolean): Promise<string> {
    const watch = kubectlBackground(kubeconfig, ['-n', ns, 'get', 'pod', pod, '-w', '-o', 'jsonpath={.status.containerStatuses[0].state}{"\\n"}']);
    const matching = (out: string): string | undefined => out.split('\n').find((line) => until(line));
    try {
      await watch.waitFor((out) => matching(out) !== undefined, 120_000, `pod ${pod}'s container state`);
      return matching(watch.stdout) ?? '';
    } finally {
      await watch.stop();
    }
  }

  /** The pod's log once it holds `marker`, followed (`kubectl logs -f`) rather than polled; at most a minute. */
  async function logsWith(kubeconfig: string, ns: string, pod: string, marker: string): Promise<string> {
    const logs = kubectlBackground(kubeconfig, ['-n', ns, 'logs', '-f', pod]);
    try {
      await logs.waitFor((out) => out.includes(marker), 60_000, `${marker} in pod ${pod}'s log`);
      return logs.stdout;
    } finally {
      await logs.stop();
    }
  }

  before(async () => {
    const registry = e2eRegistry();
    alpha = await createProjectWithMember(alphaName, 'alice');
    beta = await createProjectWithMember(betaName, 'bob');
    alice = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', alphaName)).token, alphaNs);
    bob = tenantKubeconfig(sharedGateway().url, (await issueToken('bob', betaName)).token, betaNs);
    await mustSucceed(kubectl(alice, ['get', 'pods']), "provision alice's namespace");
    await mustSucceed(kubectl(bob, ['get', 'pods']), "provision bob's namespace");
    webhook = await registerPodSecurityWebhook(sharedGateway(), [alpha, beta], alphaNs);
    cachedBefore = (await engineDocker(['image', 'inspect', registry.privateImage])).code === 0;
  });
  after(() =>
    cleanUp(
      async () => webhook?.remove(),
      // The pods go first (together), so that the image they ran can be removed below.
      () =>
        Promise.all([
          adminKubectl(['delete', 'pods', '--all', '-n', alphaNs, '--grace-period=1', '--wait=true', '--timeout=60s']),
          adminKubectl(['delete', 'pods', '--all', '-n', betaNs, '--grace-period=1', '--wait=true', '--timeout=60s']),
          adminKubectl(['delete', 'namespace', control, '--wait=true', '--timeout=60s', '--ignore-not-found']),
        ]),
      async () => alpha !== undefined && deleteProject(alpha),
      async () => beta !== undefined && deleteProject(beta),
      () => adminKubectl(['delete', 'namespace', alphaNs, betaNs, '--wait=false', '--ignore-not-found']),
      // Leave the engine's cache as found: the env promises the private image is not in it after `up` (the removal
      // fails, harmlessly, while the kubelet still keeps a stopped container of it).
      async () => !cachedBefore && engineDocker(['image', 'rm', e2eRegistry().privateImage]),
    ),
  );

  it("alice's pod with an imagePullSecret runs the private image on the real kubelet; the webhook set imagePullPolicy Always", async () => {
    const { address, user, password, privateImage, marker } = e2eRegistry();
    const auth = Buffer.from(`${user}:${password}`).toString('base64');
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'regcred' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [address]: { auth } } })).toString('base64') },
    };
    // Through stdin, so the password is on no command line.
    await mustSucceed(kubectl(alice, ['apply', '-f', '-'], { input: JSON.stringify(secret) }), 'the pull secret');
    await mustSucceed(kubectl(alice, ['apply', '-f', '-'], { input: podJson('private', privateImage, 'IfNotPresent', { imagePullSecrets: [{ name: 'regcred' }] }) }), "alice's pod");
    assert.equal((await jsonpath(alice, alphaNs, 'private', '{.spec.containers[0].imagePullPolicy}')).stdout, 'Always', 'mutated by the webhook');
    const state = await containerState(alice, alphaNs, 'private', (s) => /"running"|ErrImagePull|ImagePullBackOff/.test(s));
    assert.match(state, /"running"/, `alice's container never ran: ${state}`);
    const logs = await logsWith(alice, alphaNs, 'private', marker);
    assert.ok(logs.includes(marker), `alice's pod printed the image's /secret.txt: ${logs}`);
    assert.equal((await engineDocker(['image', 'inspect', privateImage])).code, 0, 'the node has it cached now');
  });

  it("bob's pod naming it with IfNotPresent and no pull secret does not run it: Always makes the kubelet ask the registry, which refuses", async () => {
    const { privateImage } = e2eRegistry();
    await mustSucceed(kubectl(bob, ['apply', '-f', '-'], { input: podJson('borrowed', privateImage, 'IfNotPresent') }), "bob's pod is admitted (mutated)");
    assert.equal((await jsonpath(bob, betaNs, 'borrowed', '{.spec.containers[0].imagePullPolicy}')).stdout, 'Always');
    const state = await containerState(bob, betaNs, 'borrowed', (s) => /ErrImagePull|ImagePullBackOff|"running"/.test(s));
    assert.match(state, /"waiting":\{.*"reason":"(ErrImagePull|ImagePullBackOff)"/, `bob's container: ${state}`);
    assert.doesNotMatch(state, /"running"/);
    const logs = await kubectl(bob, ['-n', betaNs, 'logs', 'borrowed']);
    assert.doesNotMatch(logs.stdout, new RegExp(e2eRegistry().marker));
  });

  it('a shared image the operator listed (local/busybox, which no registry serves) keeps its policy and runs for bob', async () => {
    await mustSucceed(kubectl(bob, ['apply', '-f', '-'], { input: podJson('shared', e2eEnv().busyboxImage, 'Never') }), "bob's pod of the shared image");
    assert.equal((await jsonpath(bob, betaNs, 'shared', '{.spec.containers[0].imagePullPolicy}')).stdout, 'Never', 'not mutated');
    const state = await containerState(bob, betaNs, 'shared', (s) => /"running"/.test(s));
    assert.match(state, /"running"/, state);
  });

  it('bob cannot keep IfNotPresent by any other route: with the mutating webhook gone, the validating one refuses the pod', async () => {
    // What a cluster whose operator registered only the validating webhook sees (README "Pods without the Helm chart").
    const name = webhook?.name ?? '';
    await mustSucceed(adminKubectl(['delete', 'mutatingwebhookconfiguration', name]), 'unregister the mutating webhook');
    let res = await kubectl(bob, ['create', '--dry-run=server', '-f', '-'], { input: podJson('sneaky', e2eRegistry().privateImage, 'IfNotPresent') });
    // The apiserver drops the deleted configuration asynchronously: until then the pod comes back mutated.
    for (let i = 0; i < 40 && res.code === 0; i += 1) {
      await sleep(250);
      res = await kubectl(bob, ['create', '--dry-run=server', '-f', '-'], { input: podJson('sneaky', e2eRegistry().privateImage, 'IfNotPresent') });
    }
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(res.stderr, /denied the request: pod "sneaky" would run images from the node's cache without asking their registry \(spec\.containers\[0\] "main" image ".*" imagePullPolicy=IfNotPresent\)/);
  });

  it("without the webhooks (a namespace the gateway does not watch) the same pod runs alice's image from the cache (control)", async () => {
    await mustSucceed(adminKubectl(['create', 'namespace', control]), 'a scratch namespace');
    await mustSucceed(adminKubectl(['apply', '-n', control, '-f', '-'], podJson('leak', e2eRegistry().privateImage, 'IfNotPresent')), 'the pod');
    const admin = e2eEnv().adminKubeconfig;
    const state = await containerState(admin, control, 'leak', (s) => /"running"|ErrImagePull|ImagePullBackOff/.test(s));
    assert.match(state, /"running"/, `the control pod never ran: ${state}`);
    const logs = await logsWith(admin, control, 'leak', e2eRegistry().marker);
    assert.ok(logs.includes(e2eRegistry().marker), 'the cached private image ran without credentials: what the webhook prevents');
  });

});
