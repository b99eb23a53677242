import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { e2eEnv } from './support/env.js';
import { httpsGet, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { E2E_CACHE_TTL_SECONDS } from './support/hooks.js';
import { createProjectWithMember, deleteProject, passwordToken, setProjectTags } from './support/keystone-admin.js';
import { kubectl, kubectlBackground, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { registerPodSecurityWebhook } from './support/pod-webhook.js';
import { run } from './support/run.js';

const MAIN = path.resolve('dist/src/main.js');

/**
 * Two real clusters behind one gateway: the e2e apiserver ("east", first, open to every project) and the second
 * apiserver on the same etcd under another key prefix ("west", open only to projects carrying a Keystone tag made for
 * this run). Fresh Keystone projects: `tagged` (alice, tagged) and `plain` (alice, no tag).
 */
describe('several clusters behind one gateway: routing, isolation, project tags, provisioning on each, kubectl contexts', function () {
  const run_ = randomBytes(3).toString('hex');
  const tag = `zgw-west-${run_}`;
  const tagged = `zgw-cl-t-${run_}`;
  const plain = `zgw-cl-p-${run_}`;
  const ns = (project: string): string => `os-${project}`;
  let gw: GatewayProcess;
  let taggedId: string;
  let plainId: string;
  let taggedToken: string;
  let plainToken: string;

  /** The cluster's own side, never through the gateway. */
  const onEast = (args: readonly string[]) => kubectl(e2eEnv().adminKubeconfig, args);
  const onWest = (args: readonly string[]) => kubectl(e2eEnv().west.adminKubeconfig, args);

  /** A kubeconfig whose server is the gateway at `serverPath`, with a token. */
  const tokenKubeconfig = (serverPath: string, token: string, namespace?: string): string => tenantKubeconfig(gw.url, token, namespace, serverPath);

  before(async function () {
    this.timeout(90_000);
    const env = e2eEnv();
    taggedId = await createProjectWithMember(tagged, 'alice');
    plainId = await createProjectWithMember(plain, 'alice');
    await setProjectTags(taggedId, [tag, 'unrelated']);
    taggedToken = await passwordToken('alice', env.passwords.alice, tagged);
    plainToken = await passwordToken('alice', env.passwords.alice, plain);
    gw = await startGateway({
      cacheTtlSeconds: E2E_CACHE_TTL_SECONDS,
      k8sClusters: [
        '- name: east',
        `  kubeconfig: ${JSON.stringify(env.gatewayKubeconfig)}`,
        '- name: west',
        `  kubeconfig: ${JSON.stringify(env.west.gatewayKubeconfig)}`,
        `  projectTags: [${tag}]`,
      ],
    });
  });

  after(async function () {
    this.timeout(90_000);
    await gw?.stop();
    for (const project of [tagged, plain]) {
      await onEast(['delete', 'namespace', ns(project), '--ignore-not-found', '--wait=false']);
      await onWest(['delete', 'namespace', ns(project), '--ignore-not-found', '--wait=false']);
    }
    if (taggedId !== undefined) await deleteProject(taggedId);
    if (plainId !== undefined) await deleteProject(plainId);
  });

  it('a project is provisioned on a cluster on its first request there, and on that cluster only', async function () {
    this.timeout(60_000);
    assert.match((await onWest(['get', 'namespace', ns(tagged)])).stderr, /NotFound/, 'nothing on west before');
    await mustSucceed(kubectl(tokenKubeconfig('/k8s/clusters/east', taggedToken, ns(tagged)), ['get', 'configmaps']), 'first request on east');
    assert.equal(await mustSucceed(onEast(['get', 'namespace', ns(tagged), '-o', 'jsonpath={.metadata.labels.zun-gateway\\.openstack\\.org/project-id}']), 'east namespace'), taggedId);
    assert.match((await onWest(['get', 'namespace', ns(tagged)])).stderr, /NotFound/, 'a request on east provisions nothing on west');
    await mustSucceed(kubectl(tokenKubeconfig('/k8s/clusters/west', taggedToken, ns(tagged)), ['get', 'configmaps']), 'first request on west');
    assert.equal(await mustSucceed(onWest(['get', 'namespace', ns(tagged), '-o', 'jsonpath={.metadata.labels.zun-gateway\\.openstack\\.org/project-id}']), 'west namespace'), taggedId);
    const bindings = await mustSucceed(onWest(['get', 'rolebindings', '-n', ns(tagged), '-o', 'name']), 'west bindings');
    assert.match(bindings, /rolebinding\.rbac\.authorization\.k8s\.io\/zun-gateway-member/);
  });

  it('a write through /k8s/clusters/west lands on west only, and one through /k8s (the first cluster) on east only', async function () {
    this.timeout(60_000);
    const westName = `only-west-${run_}`;
    const eastName = `only-east-${run_}`;
    await mustSucceed(kubectl(tokenKubeconfig('/k8s/clusters/west', taggedToken, ns(tagged)), ['create', 'configmap', westName, '--from-literal=k=west']), 'create on west');
    await mustSucceed(kubectl(tokenKubeconfig('/k8s', taggedToken, ns(tagged)), ['create', 'configmap', eastName, '--from-literal=k=east']), 'create on /k8s');
    assert.equal(await mustSucceed(onWest(['get', 'configmap', westName, '-n', ns(tagged), '-o', 'jsonpath={.data.k}']), 'on west'), 'west');
    assert.match((await onEast(['get', 'configmap', westName, '-n', ns(tagged)])).stderr, /NotFound/);
    assert.equal(await mustSucceed(onEast(['get', 'configmap', eastName, '-n', ns(tagged), '-o', 'jsonpath={.data.k}']), 'on east'), 'east');
    assert.match((await onWest(['get', 'configmap', eastName, '-n', ns(tagged)])).stderr, /NotFound/);
  });

  it('on west as on /k8s: discovery, OpenAPI (explain), a watch', async function () {
    this.timeout(90_000);
    const config = tokenKubeconfig('/k8s/clusters/west', taggedToken, ns(tagged));
    assert.match(await mustSucceed(kubectl(config, ['api-resources', '--api-group=apps', '-o', 'name']), 'discovery'), /deployments\.apps/);
    assert.match(await mustSucceed(kubectl(config, ['explain', 'configmap.data']), 'explain'), /FIELD:\s+data/);
    const watch = kubectlBackground(config, ['get', 'configmaps', '-w', '-o', 'name']);
    try {
      await watch.waitFor((out) => out.includes(`configmap/only-west-${run_}`), 30_000, 'the watch lists what is there');
      await mustSucceed(kubectl(config, ['create', 'configmap', `watched-${run_}`]), 'create while watching');
      await watch.waitFor((out) => out.includes(`configmap/watched-${run_}`), 30_000, 'the watch sees the new configmap');
    } finally {
      await watch.stop();
    }
    assert.match((await onEast(['get', 'configmap', `watched-${run_}`, '-n', ns(tagged)])).stderr, /NotFound/);
  });

  it("a project without west's tag: kubectl prints the 403 naming the tag, and nothing is provisioned on west; east serves it", async function () {
    this.timeout(60_000);
    const refused = await kubectl(tokenKubeconfig('/k8s/clusters/west', plainToken, ns(plain)), ['get', 'configmaps']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`cluster west is open only to Keystone projects carrying the tag ${tag}; project ${plain} has no such tag: ask a cloud administrator to tag the project \\(openstack project set --tag ${tag} ${plain}\\), or use a cluster open to you: east`));
    assert.match((await onWest(['get', 'namespace', ns(plain)])).stderr, /NotFound/);
    await mustSucceed(kubectl(tokenKubeconfig('/k8s/clusters/east', plainToken, ns(plain)), ['get', 'configmaps']), 'plain on east');
  });

  it("west's apiserver calls the gateway's webhooks at west's own paths: a privileged pod refused, a RoleBinding's namespace owner read on west", async function () {
    this.timeout(180_000);
    // A project used on west only: its namespace is on west and not on east, so an owner read on east would fail.
    const westOnly = `zgw-cl-w-${run_}`;
    const westOnlyId = await createProjectWithMember(westOnly, 'alice');
    let webhook: Awaited<ReturnType<typeof registerPodSecurityWebhook>> | undefined;
    try {
      await setProjectTags(westOnlyId, [tag]);
      const token = await passwordToken('alice', e2eEnv().passwords.alice, westOnly);
      const config = tokenKubeconfig('/k8s/clusters/west', token, ns(westOnly));
      await mustSucceed(kubectl(config, ['get', 'configmaps']), 'first request on west');
      assert.match((await onEast(['get', 'namespace', ns(westOnly)])).stderr, /NotFound/);
      webhook = await registerPodSecurityWebhook(gw, [westOnlyId], ns(westOnly), { kubeconfig: e2eEnv().west.adminKubeconfig, cluster: 'west' });
      const privileged = await kubectl(config, ['run', 'priv', '--image=registry.invalid/x:1', '--privileged']);
      assert.notEqual(privileged.code, 0);
      assert.match(privileged.stderr, /denied the request.*privileged/);
      const binding = (name: string, group: string) => onWest(['create', 'rolebinding', name, '-n', ns(westOnly), '--clusterrole=view', `--group=${group}`]);
      await mustSucceed(binding('own', `keystone:project:${westOnlyId}:role:member`), "a binding to the project's own group (its owner read on west)");
      const foreign = await binding('foreign', `keystone:project:${taggedId}:role:member`);
      assert.notEqual(foreign.code, 0);
      assert.match(foreign.stderr, /denied the request.*the group of another Keystone project/);
    } finally {
      await webhook?.remove();
      await onWest(['delete', 'namespace', ns(westOnly), '--ignore-not-found', '--wait=false']);
      await deleteProject(westOnlyId);
    }
  });

  it('an unknown cluster: a 404 naming the clusters this project may use, and no other (kubectl get --raw prints it)', async () => {
    const north = (token: string, namespace: string) => tokenKubeconfig('/k8s/clusters/north', token, namespace);
    const forTagged = await kubectl(north(taggedToken, ns(tagged)), ['get', '--raw', '/k8s/clusters/north/api/v1/namespaces']);
    assert.notEqual(forTagged.code, 0);
    assert.equal(forTagged.stderr, 'Error from server (NotFound): this gateway has no cluster named north; the clusters you may use: east (/k8s/clusters/east), west (/k8s/clusters/west)\n');
    const forPlain = await kubectl(north(plainToken, ns(plain)), ['get', '--raw', '/k8s/clusters/north/version']);
    assert.equal(forPlain.stderr, 'Error from server (NotFound): this gateway has no cluster named north; the clusters you may use: east (/k8s/clusters/east)\n');
    // Other commands fail too; kubectl (client-go) shows a 404 as "the server could not find the requested resource".
    const ordinary = await kubectl(north(plainToken, ns(plain)), ['get', 'configmaps']);
    assert.notEqual(ordinary.code, 0);
    assert.match(ordinary.stderr, /Error from server \(NotFound\)/);
  });

  it('`zun-gateway kubeconfig` writes a context per cluster the project may use; kubectl works with both, and `get --raw` with the cluster prefix', async function () {
    this.timeout(120_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-user-'));
    const userEnv = (project: string): Record<string, string> => ({
      OS_AUTH_URL: e2eEnv().keystoneUrl,
      OS_USERNAME: 'alice',
      OS_PASSWORD: e2eEnv().passwords.alice,
      OS_PROJECT_NAME: project,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      XDG_CACHE_HOME: path.join(dir, `cache-${project}`),
      HOME: dir,
    });
    const write = async (project: string): Promise<string> => {
      const file = path.join(dir, `kubeconfig-${project}`);
      await mustSucceed(
        run(process.execPath, [MAIN, 'kubeconfig', '--server', gw.url, '--certificate-authority', e2eEnv().tlsCa, '--context-name', 'cloud', '--output', file], {
          env: { PATH: process.env.PATH ?? '', ...userEnv(project) },
        }),
        'zun-gateway kubeconfig',
      );
      return file;
    };
    const file = await write(tagged);
    const kc = parseYaml(readFileSync(file, 'utf8')) as { 'current-context': string; contexts: Array<{ name: string; context: { namespace?: string; user: string } }>; clusters: Array<{ name: string; cluster: { server: string } }> };
    assert.equal(kc['current-context'], 'cloud-east');
    assert.deepEqual(kc.clusters.map((c) => [c.name, c.cluster.server]), [['cloud-east', `${gw.url}/k8s/clusters/east`], ['cloud-west', `${gw.url}/k8s/clusters/west`]]);
    assert.deepEqual(kc.contexts.map((c) => [c.name, c.context.namespace, c.context.user]), [['cloud-east', ns(tagged), 'cloud'], ['cloud-west', ns(tagged), 'cloud']]);

    const k = (args: readonly string[]) => kubectl(file, args, { env: userEnv(tagged) });
    assert.equal((await mustSucceed(k(['config', 'get-contexts', '-o', 'name']), 'get-contexts')).trim().split('\n').sort().join(' '), 'cloud-east cloud-west');
    const onEastCtx = await mustSucceed(k(['get', 'configmaps', '-o', 'name']), 'kubectl on the current context (east)');
    assert.match(onEastCtx, new RegExp(`configmap/only-east-${run_}`));
    assert.doesNotMatch(onEastCtx, new RegExp(`only-west-${run_}`));
    const onWestCtx = await mustSucceed(k(['--context', 'cloud-west', 'get', 'configmaps', '-o', 'name']), 'kubectl --context cloud-west');
    assert.match(onWestCtx, new RegExp(`configmap/only-west-${run_}`));
    assert.doesNotMatch(onWestCtx, new RegExp(`only-east-${run_}`));
    // `get --raw` ignores the server's path: the cluster's prefix is given whole (invariants.md 28).
    const raw = await mustSucceed(k(['--context', 'cloud-west', 'get', '--raw', `/k8s/clusters/west/api/v1/namespaces/${ns(tagged)}/configmaps/only-west-${run_}`]), 'get --raw');
    assert.equal((JSON.parse(raw) as { data: { k: string } }).data.k, 'west');

    // The untagged project's kubeconfig has east alone.
    const plainKc = parseYaml(readFileSync(await write(plain), 'utf8')) as { contexts: Array<{ name: string }> };
    assert.deepEqual(plainKc.contexts.map((c) => c.name), ['cloud-east']);
  });

  it('/whoami lists the clusters with their server URLs; /readyz reports each cluster', async () => {
    const whoami = await httpsGet(`${gw.url}/whoami`, { 'x-auth-token': taggedToken });
    assert.equal(whoami?.status, 200, whoami?.body);
    const clusters = (JSON.parse(whoami?.body ?? '{}') as { coes: { k8s: { clusters: unknown } } }).coes.k8s.clusters;
    assert.deepEqual(clusters, [
      { name: 'east', server: `${gw.url}/k8s/clusters/east`, namespace: ns(tagged) },
      { name: 'west', server: `${gw.url}/k8s/clusters/west`, namespace: ns(tagged) },
    ]);
    const ready = await httpsGet(`${gw.url}/readyz`);
    assert.equal(ready?.status, 200, ready?.body);
    const k8s = (JSON.parse(ready?.body ?? '{}') as { checks: { k8s: { ok: boolean; upstreams: Record<string, { ok: boolean; detail: string }> } } }).checks.k8s;
    assert.equal(k8s.ok, true, JSON.stringify(k8s));
    assert.deepEqual(k8s.upstreams, { east: { ok: true, detail: 'apiserver healthy' }, west: { ok: true, detail: 'apiserver healthy' } });
  });

  it("the audit trail and the metrics name the cluster each request went to", async () => {
    const audit = readFileSync(gw.auditFile, 'utf8').slice(gw.auditOffset).trim().split('\n').map((l) => JSON.parse(l) as { cluster?: string; path: string; project?: { id: string } });
    const westRecords = audit.filter((r) => r.project?.id === taggedId && r.path.startsWith('/k8s/clusters/west/'));
    assert.ok(westRecords.length > 0 && westRecords.every((r) => r.cluster === 'west'), JSON.stringify(westRecords.slice(0, 3)));
    assert.ok(audit.some((r) => r.project?.id === taggedId && r.path.startsWith('/k8s/api') && r.cluster === 'east'), 'a /k8s request is audited as east');
    const metrics = await (await fetch(gw.metricsUrl)).text();
    assert.match(metrics, /^zun_gateway_cluster_requests_total\{coe="k8s",cluster="west",code="200"\} [1-9]/m);
    assert.match(metrics, /^zun_gateway_cluster_requests_total\{coe="k8s",cluster="west",code="403"\} [1-9]/m);
    assert.match(metrics, /^zun_gateway_provisioning_actions_total\{action="namespace_created",outcome="ok",cluster="west"\} [1-9]/m);
  });
});
