import assert from 'node:assert/strict';
import { FULL_VALUES, at, isObj, listAt, permissions, render, strAt, type Obj, type Rendered } from '../chart/render.js';
import { e2eEnv } from './support/env.js';
import { adminKubectl, kubectl, mustSucceed } from './support/kubectl.js';

/**
 * The Helm chart against the real apiserver: every object it renders is accepted by `kubectl apply --dry-run=server`
 * (schema, admission, RBAC escalation checks; nothing is stored), and the gateway this suite runs holds exactly the
 * chart's ClusterRole (test/e2e/env/lib.sh applies it from the chart), so every k8s spec passing proves that least
 * privilege is enough.
 */

/** Another release name than the e2e env's own RBAC (zun-gateway), so the dry-run creates rather than updates. */
const DRY_RUN_RELEASE = 'zun-gateway-dryrun';

async function serverVersion(): Promise<string> {
  const out = await mustSucceed(adminKubectl(['version', '-o', 'json']), 'kubectl version');
  const parsed: unknown = JSON.parse(out);
  return strAt(parsed, 'serverVersion', 'gitVersion');
}

async function dryRunApply(rendered: Rendered): Promise<string[]> {
  const out = await mustSucceed(adminKubectl(['apply', '--dry-run=server', '-f', '-'], rendered.text), 'kubectl apply --dry-run=server');
  return out.split('\n').filter((line) => line.trim() !== '');
}

function describeObject(o: Obj): string {
  return `${strAt(o, 'kind').toLowerCase()}/${strAt(o, 'metadata', 'name')}`;
}

/** kubectl's line for an object it would create: `<kind>[.<group>]/<name> created (server dry run)`. */
function acceptedLine(lines: readonly string[], o: Obj): boolean {
  const kind = strAt(o, 'kind').toLowerCase();
  const name = strAt(o, 'metadata', 'name');
  return lines.some((l) => {
    const m = /^([a-z]+)(?:\.[a-z0-9.]+)?\/(\S+) created \(server dry run\)$/.exec(l);
    return m !== null && m[1] === kind && m[2] === name;
  });
}

describe('Helm chart on the real apiserver', function () {
  this.timeout(120_000);
  let kubeVersion: string;

  before(async () => {
    // The HPA and PDB apiVersions follow the cluster's version, as `helm install` would pick them.
    kubeVersion = await serverVersion();
  });

  it('kubectl apply --dry-run=server accepts every object rendered with default values', async () => {
    const rendered = await render({ release: DRY_RUN_RELEASE, namespace: 'default', kubeVersion });
    const lines = await dryRunApply(rendered);
    assert.equal(lines.length, rendered.objects.length, lines.join('\n'));
    for (const o of rendered.objects) {
      assert.ok(acceptedLine(lines, o), `${describeObject(o)} in:\n${lines.join('\n')}`);
    }
  });

  it('kubectl apply --dry-run=server accepts every object rendered with the full values (TLS, mTLS, HPA, PDB, docker, audit file)', async () => {
    // Without the ServiceMonitor: the e2e cluster has no Prometheus operator, so its CRD (monitoring.coreos.com/v1)
    // does not exist there and the apiserver cannot know the kind. The unit chart test checks what it renders.
    const rendered = await render({
      release: DRY_RUN_RELEASE,
      namespace: 'default',
      kubeVersion,
      valuesFiles: [FULL_VALUES],
      set: { 'serviceMonitor.enabled': 'false' },
    });
    assert.deepEqual(rendered.all('ServiceMonitor'), []);
    assert.equal(rendered.all('HorizontalPodAutoscaler').length, 1);
    assert.equal(rendered.all('PodDisruptionBudget').length, 1);
    const lines = await dryRunApply(rendered);
    assert.equal(lines.length, rendered.objects.length, lines.join('\n'));
    for (const o of rendered.objects) {
      assert.ok(acceptedLine(lines, o), `${describeObject(o)} in:\n${lines.join('\n')}`);
    }
  });

  it("the gateway's identity holds the chart's ClusterRole exactly, bound to user zun-gateway", async () => {
    const chartRole = (await render()).one('ClusterRole');
    const live: unknown = JSON.parse(await mustSucceed(adminKubectl(['get', 'clusterrole', 'zun-gateway', '-o', 'json']), 'get clusterrole'));
    assert.deepEqual(permissions(listAt(live, 'rules')), permissions(listAt(chartRole, 'rules')));
    assert.equal(at(live, 'metadata', 'labels', 'helm.sh/chart'), at(chartRole, 'metadata', 'labels', 'helm.sh/chart'));

    const bindings: unknown = JSON.parse(await mustSucceed(adminKubectl(['get', 'clusterrolebindings', '-o', 'json']), 'get clusterrolebindings'));
    const ofGateway = listAt(bindings, 'items').filter((b) =>
      (at(b, 'subjects') === undefined ? [] : listAt(b, 'subjects')).some((s) => isObj(s) && s.kind === 'User' && s.name === 'zun-gateway'),
    );
    assert.deepEqual(ofGateway.map((b) => `${strAt(b, 'roleRef', 'kind')}/${strAt(b, 'roleRef', 'name')}`), ['ClusterRole/zun-gateway']);
  });

  it('what the ClusterRole does not grant, the gateway cannot do', async () => {
    const canI = async (...args: string[]): Promise<string> => {
      const r = await kubectl(e2eEnv().gatewayKubeconfig, ['auth', 'can-i', ...args]);
      return r.stdout.trim();
    };
    assert.equal(await canI('impersonate', 'users'), 'yes');
    assert.equal(await canI('create', 'namespaces'), 'yes');
    assert.equal(await canI('bind', 'clusterroles/edit'), 'yes');
    assert.equal(await canI('bind', 'clusterroles/cluster-admin'), 'no');
    assert.equal(await canI('get', 'secrets', '--all-namespaces'), 'no');
    assert.equal(await canI('create', 'pods', '--namespace', 'default'), 'no');
    assert.equal(await canI('delete', 'namespaces'), 'no');
    assert.equal(await canI('patch', 'clusterroles'), 'no');
  });
});
