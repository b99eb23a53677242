import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { e2eEnv } from './support/env.js';
import { httpsGet, sharedGateway, startGateway } from './support/gateway-process.js';
import { issueToken, projectId, revokeToken, type E2eUser } from './support/keystone.js';
import { E2E_CACHE_TTL_SECONDS } from './support/hooks.js';
import { countingKeystoneProxy, createApplicationCredential, createProjectWithMember, deleteProject } from './support/keystone-admin.js';
import { adminKubectl, kubectl, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { auditRecordMatching, metricValue } from './support/observability.js';
import { run } from './support/run.js';

const MAIN = path.resolve('dist/src/main.js');

/** The OpenStack client inputs a user has in their shell, and nothing else. */
function osEnv(user: E2eUser, project: string, authUrl = e2eEnv().keystoneUrl): Record<string, string> {
  return {
    OS_AUTH_URL: authUrl,
    OS_USERNAME: user,
    OS_PASSWORD: e2eEnv().passwords[user],
    OS_PROJECT_NAME: project,
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
  };
}

/** `zun-gateway kubeconfig` as a user runs it, with a fresh token cache of their own. */
async function makeKubeconfig(env: Record<string, string>): Promise<{ file: string; env: Record<string, string> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-user-'));
  const file = path.join(dir, 'kubeconfig');
  const userEnv = { ...env, XDG_CACHE_HOME: path.join(dir, 'cache'), XDG_CONFIG_HOME: path.join(dir, 'config'), HOME: dir };
  await mustSucceed(
    run(process.execPath, [MAIN, 'kubeconfig', '--server', sharedGateway().url, '--certificate-authority', e2eEnv().tlsCa, '--output', file], {
      env: { PATH: process.env.PATH ?? '', ...userEnv },
    }),
    'zun-gateway kubeconfig',
  );
  return { file, env: userEnv };
}

const forbidden = /Forbidden|forbidden/;

describe('tenants on Kubernetes: a namespace per project, role mapping, kubectl login with Keystone credentials', function () {
  let alice: { file: string; env: Record<string, string> };

  before(async function () {
    this.timeout(60_000);
    alice = await makeKubeconfig(osEnv('alice', 'alpha'));
  });

  it('the kubeconfig holds no secret, runs the exec plugin non-interactively, and names alpha\'s namespace', () => {
    const text = readFileSync(alice.file, 'utf8');
    assert.doesNotMatch(text, new RegExp(e2eEnv().passwords.alice));
    assert.match(text, /interactiveMode: Never/);
    assert.match(text, /namespace: os-alpha/);
  });

  it('alice, with only OS_* variables, applies a Deployment without -n; it runs; logs and exec work', async function () {
    this.timeout(240_000);
    const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: tenant-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: tenant-app}}
  template:
    metadata: {labels: {app: tenant-app}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: ${e2eEnv().busyboxImage}
        imagePullPolicy: Never
        command: [sh, -c, 'echo tenant-started; exec sleep 3600']
`;
    const k = (args: string[], input?: string) => kubectl(alice.file, args, { env: alice.env, ...(input !== undefined ? { input } : {}), timeoutMs: 200_000 });
    const applied = await mustSucceed(k(['apply', '-f', '-'], deployment), 'apply');
    assert.match(applied, /deployment.apps\/tenant-app (created|unchanged|configured)/);
    const ns = await mustSucceed(k(['get', 'deployment', 'tenant-app', '-o', 'jsonpath={.metadata.namespace}']), 'get');
    assert.equal(ns, 'os-alpha');
    await mustSucceed(k(['rollout', 'status', 'deployment/tenant-app', '--timeout=150s']), 'rollout');
    const logs = await mustSucceed(k(['logs', 'deployment/tenant-app']), 'logs');
    assert.match(logs, /tenant-started/);
    const out = await mustSucceed(k(['exec', '-i', 'deployment/tenant-app', '--', 'cat'], 'through-exec\n'), 'exec');
    assert.equal(out, 'through-exec\n');
    const owner = await mustSucceed(adminKubectl(['get', 'namespace', 'os-alpha', '-o', 'jsonpath={.metadata.labels.zun-gateway\\.openstack\\.org/project-id}']), 'ns label');
    assert.equal(owner, (await issueToken('alice', 'alpha')).projectId);
  });

  describe('isolation, decided by the real apiserver', () => {
    let bob: string;
    let carol: string;
    let aliceToken: string;

    before(async function () {
      this.timeout(60_000);
      const gw = sharedGateway().url;
      aliceToken = (await issueToken('alice', 'alpha')).token;
      bob = tenantKubeconfig(gw, (await issueToken('bob', 'beta')).token);
      carol = tenantKubeconfig(gw, (await issueToken('carol', 'alpha')).token);
      // bob's first request provisions beta's namespace.
      await mustSucceed(kubectl(bob, ['get', 'pods', '-n', 'os-beta']), 'bob in his own namespace');
    });

    for (const args of [
      ['get', 'pods'],
      ['get', 'deployment', 'tenant-app'],
      ['get', 'pods', '-w', '--request-timeout=5s'],
      ['exec', 'deployment/tenant-app', '--', 'true'],
      ['delete', 'deployment', 'tenant-app'],
    ]) {
      it(`bob cannot ${args.filter((a) => !a.startsWith('--')).join(' ')} in alpha's namespace`, async () => {
        const res = await kubectl(bob, [...args, '-n', 'os-alpha']);
        assert.notEqual(res.code, 0);
        assert.match(res.stderr, forbidden);
        assert.match(res.stderr, /keystone:bob/);
      });
    }

    it("alice cannot list or create in beta's namespace", async () => {
      const config = tenantKubeconfig(sharedGateway().url, aliceToken);
      const list = await kubectl(config, ['get', 'pods', '-n', 'os-beta']);
      assert.match(list.stderr, forbidden);
      const create = await kubectl(config, ['create', 'configmap', 'x', '-n', 'os-beta']);
      assert.match(create.stderr, forbidden);
    });

    it("a member is a reader too (Keystone's implied roles): alice's token lists both, and a binding for the reader group reaches her (invariants.md 27)", async function () {
      this.timeout(60_000);
      const whoami = await httpsGet(`${sharedGateway().url}/whoami`, { 'x-auth-token': aliceToken });
      assert.equal(whoami?.status, 200, whoami?.body);
      const roles = (JSON.parse(whoami?.body ?? '{}') as { roles?: string[] }).roles ?? [];
      assert.ok(roles.includes('member') && roles.includes('reader'), `alice's roles: ${roles.join(', ')}`);
      // alice is seeded with member only, which maps to `edit`: no RBAC reads. A Role bound to alpha's reader group
      // alone gives her one; the real apiserver decides, from the groups the gateway impersonated.
      const config = tenantKubeconfig(sharedGateway().url, aliceToken);
      assert.match((await kubectl(config, ['get', 'rolebindings', '-n', 'os-alpha'])).stderr, forbidden, 'edit cannot read RoleBindings');
      const readerGroup = `keystone:project:${await projectId('alpha')}:role:reader`;
      await mustSucceed(adminKubectl(['create', 'role', 'implied-reader-probe', '-n', 'os-alpha', '--verb=list', '--resource=rolebindings.rbac.authorization.k8s.io']), 'create the probe Role');
      try {
        await mustSucceed(adminKubectl(['create', 'rolebinding', 'implied-reader-probe', '-n', 'os-alpha', '--role=implied-reader-probe', `--group=${readerGroup}`]), 'bind it to the reader group');
        let last = '';
        for (let i = 0; i < 20; i += 1) {
          const r = await kubectl(config, ['get', 'rolebindings', '-n', 'os-alpha', '-o', 'name']);
          if (r.code === 0) {
            last = r.stdout;
            break;
          }
          last = r.stderr;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        assert.match(last, /rolebinding\.rbac\.authorization\.k8s\.io\/implied-reader-probe/, `alice could not list RoleBindings through the reader group: ${last}`);
      } finally {
        await adminKubectl(['delete', 'rolebinding,role', 'implied-reader-probe', '-n', 'os-alpha', '--ignore-not-found']);
      }
    });

    it('carol (reader) can get and list, cannot create or delete', async () => {
      await mustSucceed(kubectl(carol, ['get', 'deployment', 'tenant-app', '-n', 'os-alpha']), 'carol get');
      await mustSucceed(kubectl(carol, ['get', 'pods', '-n', 'os-alpha']), 'carol list');
      const create = await kubectl(carol, ['create', 'configmap', `c-${randomBytes(2).toString('hex')}`, '-n', 'os-alpha']);
      assert.match(create.stderr, forbidden);
      const del = await kubectl(carol, ['delete', 'deployment', 'tenant-app', '-n', 'os-alpha']);
      assert.match(del.stderr, forbidden);
    });

    it('dave acts in alpha only with an alpha-scoped token, in beta only with a beta-scoped one', async () => {
      const gw = sharedGateway().url;
      const inAlpha = tenantKubeconfig(gw, (await issueToken('dave', 'alpha')).token);
      const inBeta = tenantKubeconfig(gw, (await issueToken('dave', 'beta')).token);
      const name = `dave-${randomBytes(2).toString('hex')}`;
      await mustSucceed(kubectl(inAlpha, ['create', 'configmap', name, '-n', 'os-alpha']), 'dave@alpha in alpha');
      assert.match((await kubectl(inAlpha, ['get', 'configmaps', '-n', 'os-beta'])).stderr, forbidden);
      await mustSucceed(kubectl(inBeta, ['create', 'configmap', name, '-n', 'os-beta']), 'dave@beta in beta');
      assert.match((await kubectl(inBeta, ['get', 'configmaps', '-n', 'os-alpha'])).stderr, forbidden);
      await adminKubectl(['delete', 'configmap', name, '-n', 'os-alpha']);
      await adminKubectl(['delete', 'configmap', name, '-n', 'os-beta']);
    });
  });

  it('a new project gets its namespace and bindings on its first request: counted in /metrics, audited', async function () {
    this.timeout(60_000);
    const name = `fresh-${randomBytes(3).toString('hex')}`;
    const projectId = await createProjectWithMember(name, 'alice');
    try {
      const created = await metricValue('zun_gateway_provisioning_actions_total', { action: 'namespace_created', outcome: 'ok' });
      const bound = await metricValue('zun_gateway_provisioning_actions_total', { action: 'rolebinding_created', outcome: 'ok' });
      const started = new Date(Date.now() - 1000);
      const config = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', name)).token, `os-${name}`);
      await mustSucceed(kubectl(config, ['get', 'pods']), 'first request of the new project');
      assert.equal(await metricValue('zun_gateway_provisioning_actions_total', { action: 'namespace_created', outcome: 'ok' }), created + 1);
      assert.ok((await metricValue('zun_gateway_provisioning_actions_total', { action: 'rolebinding_created', outcome: 'ok' })) > bound);
      // The request for pods, not kubectl's discovery before it (made when its discovery cache is cold), which names no namespace.
      const record = await auditRecordMatching(started, (r) => r.project?.id === projectId && r.path.includes('/pods'));
      assert.equal(record.namespace, `os-${name}`);
      assert.equal(record.project?.name, name);
      assert.equal(record.status, 200);
    } finally {
      await deleteProject(projectId);
      await adminKubectl(['delete', 'namespace', `os-${name}`, '--wait=false']);
    }
  });

  it('a pre-existing namespace without the ownership record is never adopted', async function () {
    this.timeout(60_000);
    const name = `squat-${randomBytes(3).toString('hex')}`;
    await mustSucceed(adminKubectl(['create', 'namespace', `os-${name}`]), 'pre-existing namespace');
    const projectId = await createProjectWithMember(name, 'alice');
    try {
      const config = tenantKubeconfig(sharedGateway().url, (await issueToken('alice', name)).token);
      const res = await kubectl(config, ['get', 'pods', '-n', `os-${name}`]);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /already exists and is not owned by project/);
      const bindings = await mustSucceed(adminKubectl(['get', 'rolebindings', '-n', `os-${name}`, '-o', 'name']), 'bindings');
      assert.equal(bindings.trim(), '', 'the gateway made no binding in a namespace it does not own');
    } finally {
      await deleteProject(projectId);
      await adminKubectl(['delete', 'namespace', `os-${name}`, '--wait=false']);
    }
  });

  it("one of the gateway's RoleBindings unlabelled and re-pointed by a project admin is put back on the project's next check", async function () {
    this.timeout(90_000);
    // A project admin (ClusterRole admin) may update RoleBindings in their namespace: removing the managed-by label
    // hid the binding from the gateway's labelled list, its create got 409, and the re-pointed binding stayed for good.
    const name = `rebind-${randomBytes(3).toString('hex')}`;
    const projectId = await createProjectWithMember(name, 'alice');
    const gw = await startGateway({ cacheTtlSeconds: 300, k8s: ['  recheckSeconds: 1'] });
    const ns = `os-${name}`;
    try {
      const config = tenantKubeconfig(gw.url, (await issueToken('alice', name)).token, ns);
      await mustSucceed(kubectl(config, ['get', 'configmaps']), 'first request of the new project');
      await mustSucceed(adminKubectl(['label', 'rolebinding', 'zun-gateway-member', '-n', ns, 'app.kubernetes.io/managed-by-']), 'unlabel');
      const other = 'keystone:project:0000000000000000000000000000dead:role:member';
      await mustSucceed(
        adminKubectl(['patch', 'rolebinding', 'zun-gateway-member', '-n', ns, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/subjects/0/name', value: other }])]),
        're-point',
      );
      await new Promise((r) => setTimeout(r, 1500));
      // alice still reads (reader binding); her request is the project's next check.
      await mustSucceed(kubectl(config, ['get', 'configmaps']), 'the next check');
      const binding = JSON.parse(await mustSucceed(adminKubectl(['get', 'rolebinding', 'zun-gateway-member', '-n', ns, '-o', 'json']), 'binding')) as {
        metadata: { labels?: Record<string, string> };
        subjects: Array<{ name: string }>;
      };
      assert.deepEqual(binding.subjects.map((s) => s.name), [`keystone:project:${projectId}:role:member`]);
      assert.equal(binding.metadata.labels?.['app.kubernetes.io/managed-by'], 'zun-gateway');
      await mustSucceed(kubectl(config, ['create', 'configmap', 'after-repair']), 'alice, a member, can write again');
    } finally {
      await gw.stop();
      await deleteProject(projectId);
      await adminKubectl(['delete', 'namespace', ns, '--wait=false']);
    }
  });

  it('clouds.yaml with an application credential works end to end', async function () {
    this.timeout(60_000);
    const t = await issueToken('alice', 'alpha');
    const ac = await createApplicationCredential(t.token, t.userId, `e2e-${randomBytes(3).toString('hex')}`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-clouds-'));
    writeFileSync(
      path.join(dir, 'clouds.yaml'),
      `clouds:\n  e2e:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: ${e2eEnv().keystoneUrl}\n      application_credential_id: ${ac.id}\n`,
    );
    writeFileSync(path.join(dir, 'secure.yaml'), `clouds:\n  e2e:\n    auth:\n      application_credential_secret: ${ac.secret}\n`);
    const user = await makeKubeconfig({ OS_CLOUD: 'e2e', OS_CLIENT_CONFIG_FILE: path.join(dir, 'clouds.yaml') });
    assert.doesNotMatch(readFileSync(user.file, 'utf8'), new RegExp(ac.secret));
    const out = await mustSucceed(kubectl(user.file, ['get', 'deployments', '-o', 'name'], { env: user.env }), 'kubectl with clouds.yaml');
    assert.match(out, /tenant-app/);
  });

  it('ten kubectl runs in a row with the plugin cost one Keystone password authentication', async function () {
    this.timeout(120_000);
    const proxy = await countingKeystoneProxy();
    try {
      const user = await makeKubeconfig(osEnv('alice', 'alpha', proxy.url));
      const before = proxy.authentications();
      for (let i = 0; i < 10; i += 1) {
        await mustSucceed(kubectl(user.file, ['get', 'pods'], { env: user.env }), `kubectl run ${i}`);
      }
      assert.ok(before <= 1, `making the kubeconfig authenticated ${before} times`);
      assert.equal(proxy.authentications(), 1, 'one authentication in all: the plugin reuses its cached token');
    } finally {
      await proxy.close();
    }
  });

  it('a revoked cached token: kubectl re-runs the plugin on the 401 and gets a new token, so at most one command fails (invariants.md 23)', async function () {
    this.timeout(120_000);
    const user = await makeKubeconfig(osEnv('alice', 'alpha'));
    await mustSucceed(kubectl(user.file, ['get', 'pods'], { env: user.env }), 'kubectl with the plugin');
    const cacheDir = path.join(user.env.XDG_CACHE_HOME ?? '', 'zun-gateway');
    const cachedToken = (): string => {
      const file = readdirSync(cacheDir).find((f) => f.endsWith('.json'));
      return file === undefined ? '' : (JSON.parse(readFileSync(path.join(cacheDir, file), 'utf8')) as { token: string }).token;
    };
    const revoked = cachedToken();
    assert.notEqual(revoked, '', 'the plugin cached its token');
    await revokeToken(revoked);
    // The gateway may serve the revoked token from its own cache for up to cacheTtlSeconds; then it answers 401,
    // client-go runs the plugin again, and the plugin must not hand back the token it just gave.
    const deadline = Date.now() + (E2E_CACHE_TTL_SECONDS + 15) * 1000;
    const failures: string[] = [];
    while (cachedToken() === revoked && Date.now() < deadline) {
      const r = await kubectl(user.file, ['get', 'pods'], { env: user.env });
      if (r.code !== 0) failures.push(r.stderr.trim());
      if (cachedToken() === revoked) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.notEqual(cachedToken(), revoked, `the plugin still hands out the revoked token: ${failures.at(-1) ?? ''}`);
    assert.ok(failures.length <= 1, `${failures.length} commands failed: ${failures.join(' | ')}`);
    await mustSucceed(kubectl(user.file, ['get', 'pods'], { env: user.env }), 'the next kubectl run, with the new token');
  });
});
