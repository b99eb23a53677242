import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { HELM } from '../chart/render.js';
import { e2eEnv } from './support/env.js';
import { httpsGet, sharedGateway, startGateway } from './support/gateway-process.js';
import { E2E_CACHE_TTL_SECONDS } from './support/hooks.js';
import { issueToken, revokeToken, type IssuedToken } from './support/keystone.js';
import { applicationCredentialToken, createApplicationCredential } from './support/keystone-admin.js';
import { adminKubectl, kubectl, kubectlBackground, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { auditRecordMatching, metricValue } from './support/observability.js';
import { run } from './support/run.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function localGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/index.html', timeout: 10_000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('kubectl through the gateway (real Keystone, apiserver, kubelet, kubectl)', function () {
  const ns = `e2e-${randomBytes(3).toString('hex')}`;
  // Both ports below the kernel's ephemeral range (32768+), so no outgoing connection can hold them.
  const podPort = randomInt(11_000, 19_000);
  let alice: IssuedToken;
  let bob: IssuedToken;
  let aliceConfig: string;
  let bobConfig: string;
  let podName: string;

  before(async function () {
    this.timeout(120_000);
    alice = await issueToken('alice', 'alpha');
    bob = await issueToken('bob', 'beta');
    const gw = sharedGateway();
    aliceConfig = tenantKubeconfig(gw.url, alice.token, ns);
    bobConfig = tenantKubeconfig(gw.url, bob.token, ns);
    // The cluster side, as an operator would set it up: alpha's members may edit this namespace. bob gets nothing.
    await mustSucceed(adminKubectl(['create', 'namespace', ns]), 'create namespace');
    await mustSucceed(
      adminKubectl([
        'create', 'rolebinding', 'alpha-members', '-n', ns, '--clusterrole=edit',
        `--group=keystone:project:${alice.projectId}:role:member`,
      ]),
      'create rolebinding',
    );
  });

  after(async function () {
    this.timeout(60_000);
    await adminKubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('kubectl version reports the real apiserver through /k8s', async () => {
    const out = await mustSucceed(kubectl(aliceConfig, ['version', '-o', 'json']), 'kubectl version');
    const version = JSON.parse(out) as { serverVersion?: { gitVersion?: string } };
    assert.match(version.serverVersion?.gitVersion ?? '', /^v1\.20\./);
  });

  it('kubectl api-resources lists the discovery of every group', async () => {
    const out = await mustSucceed(kubectl(aliceConfig, ['api-resources', '-o', 'name']), 'api-resources');
    for (const r of ['configmaps', 'pods', 'deployments.apps', 'rolebindings.rbac.authorization.k8s.io']) {
      assert.ok(out.split('\n').includes(r), `api-resources lacks ${r}:\n${out}`);
    }
  });

  it('kubectl apply -f creates a multi-document YAML (Deployment, Service, ConfigMap)', async () => {
    const manifest = `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, colour: blue}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: ${podPort}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: ${e2eEnv().busyboxImage}
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && echo hello-from-pod > /www/index.html && httpd -p 127.0.0.1:${podPort} -h /www && i=0; while true; do echo line-$i; i=$((i+1)); sleep 1; done']
`;
    const out = await mustSucceed(kubectl(aliceConfig, ['apply', '-f', '-'], { input: manifest }), 'apply');
    assert.match(out, /configmap\/settings created/);
    assert.match(out, /service\/web created/);
    assert.match(out, /deployment.apps\/web created/);
  });

  it('kubectl get -o yaml round-trips through apply, patch changes a field, delete removes it', async () => {
    const yaml = await mustSucceed(kubectl(aliceConfig, ['get', 'configmap', 'settings', '-o', 'yaml']), 'get -o yaml');
    assert.match(yaml, /greeting: hello/);
    const reapplied = await mustSucceed(kubectl(aliceConfig, ['apply', '-f', '-'], { input: yaml }), 'apply of get -o yaml');
    assert.match(reapplied, /configmap\/settings (unchanged|configured)/);
    await mustSucceed(
      kubectl(aliceConfig, ['patch', 'configmap', 'settings', '--type=merge', '-p', '{"data":{"colour":"green"}}']),
      'patch',
    );
    const colour = await mustSucceed(
      kubectl(aliceConfig, ['get', 'configmap', 'settings', '-o', 'jsonpath={.data.colour}']),
      'get after patch',
    );
    assert.equal(colour, 'green');
    await mustSucceed(kubectl(aliceConfig, ['delete', 'configmap', 'settings']), 'delete');
    const gone = await kubectl(aliceConfig, ['get', 'configmap', 'settings']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound|not found/);
  });

  it('the Deployment really runs a pod on the kubelet', async function () {
    this.timeout(180_000);
    await mustSucceed(kubectl(aliceConfig, ['rollout', 'status', 'deployment/web', '--timeout=150s'], { timeoutMs: 170_000 }), 'rollout status');
    podName = (
      await mustSucceed(kubectl(aliceConfig, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}']), 'get pod name')
    ).trim();
    assert.match(podName, /^web-/);
    await mustSucceed(kubectl(aliceConfig, ['wait', '--for=condition=Ready', `pod/${podName}`, '--timeout=60s']), 'pod ready');
  });

  it('kubectl get pods -w receives an event caused while it watches', async function () {
    this.timeout(60_000);
    const watch = kubectlBackground(aliceConfig, ['get', 'pods', '-w', '-n', ns]);
    try {
      await watch.waitFor((out) => out.includes(podName), 20_000, 'the initial list in the watch');
      await mustSucceed(
        adminKubectl(['run', 'watched', '-n', ns, `--image=${e2eEnv().busyboxImage}`, '--image-pull-policy=Never', '--restart=Never', '--', 'true']),
        'create a pod while watching',
      );
      await watch.waitFor((out) => out.includes('watched'), 30_000, 'the new pod in the watch');
      // The watch is a stream on a shared HTTP/2 connection to the real apiserver (not a connection of its own). Asked
      // once an event has come through it: kubectl prints the initial list before it sends the watch request.
      const metrics = await (await fetch(sharedGateway().metricsUrl)).text();
      assert.match(metrics, /^zun_gateway_upstream_http2\{coe="k8s",kind="streams"\} [1-9]/m, 'the watch rides on HTTP/2');
    } finally {
      await watch.stop();
      await adminKubectl(['delete', 'pod', 'watched', '-n', ns, '--wait=false']);
    }
  });

  it('kubectl logs -f streams lines as they are written', async function () {
    this.timeout(60_000);
    const logs = kubectlBackground(aliceConfig, ['logs', '-f', podName]);
    const highest = (): number => Math.max(-1, ...[...logs.stdout.matchAll(/line-(\d+)\n/g)].map((m) => Number(m[1])));
    try {
      await logs.waitFor((out) => /line-\d+\n/.test(out), 20_000, 'a first log line');
      await sleep(1500); // let the backlog arrive
      const backlog = highest();
      await logs.waitFor(() => highest() > backlog, 10_000, 'a line written after the follow started');
      const t1 = Date.now();
      const next = highest();
      await logs.waitFor(() => highest() > next, 10_000, 'one more line');
      const t2 = Date.now();
      // The pod writes a line a second: followed lines arrive spread out, not in one burst at the end.
      assert.ok(t2 - t1 >= 500, `two followed lines arrived ${t2 - t1} ms apart`);
      assert.equal(logs.child.exitCode, null, 'logs -f must still be following');
    } finally {
      await logs.stop();
    }
  });

  for (const [label, env] of [
    ['default (WebSocket attempt, then SPDY fallback)', {}],
    ['with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false (SPDY)', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }],
  ] as const) {
    it(`kubectl exec -i ${label} pipes stdin in and stdout back`, async () => {
      const payload = `stdin-${randomBytes(8).toString('hex')}\nsecond line\n`;
      const out = await mustSucceed(kubectl(aliceConfig, ['exec', '-i', podName, '--', 'cat'], { input: payload, env }), 'exec -i cat');
      assert.equal(out, payload);
      const stderr = await kubectl(aliceConfig, ['exec', podName, '--', 'sh', '-c', 'echo to-stderr >&2; exit 3'], { env });
      assert.equal(stderr.code, 3);
      assert.match(stderr.stderr, /to-stderr/);
    });
  }

  it('the audit trail records who did what: a kubectl get, an exec session with its bytes, a denied request', async () => {
    const started = new Date(Date.now() - 1000);
    await mustSucceed(kubectl(aliceConfig, ['get', 'configmaps', '-l', 'audit=yes']), 'get configmaps');
    const get = await auditRecordMatching(started, (r) => r.coe === 'k8s' && r.method === 'GET' && r.path.startsWith(`/k8s/api/v1/namespaces/${ns}/configmaps?`));
    assert.equal(get.user?.name, 'alice');
    assert.equal(get.user?.id, alice.userId);
    assert.equal(get.project?.id, alice.projectId);
    assert.equal(get.project?.name, 'alpha');
    assert.equal(get.namespace, ns);
    assert.equal(get.status, 200);
    assert.ok(get.bytesOut > 0 && typeof get.upstreamLatencyMs === 'number', JSON.stringify(get));

    const payload = `audited-${randomBytes(6).toString('hex')}\n`;
    assert.equal(await mustSucceed(kubectl(aliceConfig, ['exec', '-i', podName, '--', 'cat'], { input: payload }), 'exec'), payload);
    const session = await auditRecordMatching(started, (r) => r.kind === 'session' && r.namespace === ns && r.path.includes(`/pods/${podName}/exec?`));
    assert.equal(session.status, 101);
    assert.equal(session.user?.name, 'alice');
    assert.ok(session.bytesIn >= payload.length && session.bytesOut >= payload.length, JSON.stringify(session));

    await kubectl(bobConfig, ['get', 'secrets']);
    const denied = await auditRecordMatching(started, (r) => r.user?.name === 'bob' && r.path.startsWith(`/k8s/api/v1/namespaces/${ns}/secrets`));
    assert.equal(denied.status, 403, "the apiserver's refusal is recorded with its status");
    const bad = await kubectl(tenantKubeconfig(sharedGateway().url, 'not-a-token', ns), ['get', 'pods']);
    assert.notEqual(bad.code, 0);
    const unauthenticated = await auditRecordMatching(started, (r) => r.status === 401 && r.path.startsWith(`/k8s/api/v1/namespaces/${ns}/pods`));
    assert.equal(unauthenticated.user, undefined);
    assert.match(String(unauthenticated.reason), /token/);
    assert.ok(!readFileSync(sharedGateway().auditFile, 'utf8').includes(alice.token), 'a token in the audit file');
  });

  it('a watch and an exec session still open when the gateway is stopped (SIGTERM) are in its audit trail when it has exited', async function () {
    this.timeout(60_000);
    const started = new Date(Date.now() - 1000);
    const other = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS, graceSeconds: 1 });
    const config = tenantKubeconfig(other.url, alice.token, ns);
    const watch = kubectlBackground(config, ['get', 'pods', '-w']);
    const exec = kubectlBackground(config, ['exec', '-i', podName, '--', 'cat']);
    try {
      await watch.waitFor((out) => out.includes(podName), 20_000, 'the watch through the second gateway');
      const marker = `open-at-shutdown-${randomBytes(4).toString('hex')}`;
      exec.child.stdin?.write(`${marker}\n`);
      await exec.waitFor((out) => out.includes(marker), 20_000, 'the exec session through the second gateway');
      await other.stop();
      // Read once, at once: the process has exited, so whatever it did not write before is lost.
      const watched = await auditRecordMatching(started, (r) => r.kind === 'request' && r.path.startsWith(`/k8s/api/v1/namespaces/${ns}/pods?`) && r.path.includes('watch=true'), 0);
      assert.equal(watched.user?.name, 'alice');
      const session = await auditRecordMatching(started, (r) => r.kind === 'session' && r.path.includes(`/pods/${podName}/exec?`) && r.bytesIn >= marker.length, 0);
      assert.equal(session.status, 101);
    } finally {
      await watch.stop();
      await exec.stop();
      await other.stop();
    }
  });

  it('a gateway stopped (SIGTERM) with only watches open exits at once, not after its grace period: kubectl get -w ends', async function () {
    this.timeout(60_000);
    const other = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS, graceSeconds: 20 });
    const watch = kubectlBackground(tenantKubeconfig(other.url, alice.token, ns), ['get', 'configmaps', '-w']);
    try {
      await watch.waitFor((out) => out.includes('NAME'), 20_000, 'the watch through the second gateway');
      const stopped = Date.now();
      await other.stop();
      const stopMs = Date.now() - stopped;
      // Without ending watches at once the gateway waited its whole grace (20 s; the e2e stop() kills it after 10 s).
      assert.ok(stopMs < 5000, `the gateway took ${stopMs} ms to stop with one watch open`);
      await watch.waitFor((_out, _err) => watch.child.exitCode !== null, 5000, 'kubectl get -w to end');
    } finally {
      await watch.stop();
      await other.stop();
    }
  });

  it('/metrics on its own port counts what kubectl did; the tenant port does not serve it', async () => {
    assert.ok((await metricValue('zun_gateway_requests_total', { coe: 'k8s', method: 'GET', code: '200' })) > 10);
    assert.ok((await metricValue('zun_gateway_keystone_requests_total', { operation: 'validate_token', outcome: '200' })) >= 2);
    assert.ok((await metricValue('zun_gateway_token_cache_lookups_total', { result: 'hit' })) > 10);
    assert.ok((await metricValue('zun_gateway_upstream_latency_seconds_count', { coe: 'k8s' })) > 10);
    const tenantPort = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', e2eEnv().tlsCa, `${sharedGateway().url}/metrics`]);
    assert.equal(tenantPort.stdout.trim(), '404');
  });

  it('kubectl cp copies files both ways', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-cp-'));
    const local = path.join(dir, 'up.bin');
    const back = path.join(dir, 'down.bin');
    const content = randomBytes(200_000);
    writeFileSync(local, content);
    await mustSucceed(kubectl(aliceConfig, ['cp', local, `${podName}:/tmp/up.bin`]), 'cp to pod');
    await mustSucceed(kubectl(aliceConfig, ['cp', `${podName}:/tmp/up.bin`, back]), 'cp from pod');
    assert.ok(readFileSync(back).equals(content), 'the file came back byte for byte');
  });

  it('kubectl port-forward moves bytes both ways and survives 70 s idle', async function () {
    this.timeout(150_000);
    const localPort = randomInt(21_000, 29_000);
    const pf = kubectlBackground(aliceConfig, ['port-forward', `pod/${podName}`, `${localPort}:${podPort}`]);
    try {
      await pf.waitFor((out) => out.includes(`Forwarding from 127.0.0.1:${localPort}`), 30_000, 'port-forward to start');
      assert.equal((await localGet(localPort)).trim(), 'hello-from-pod');
      // The session has no timeout, so only TCP keepalive notices a client that vanished without closing (a laptop
      // suspended, a NAT or VPN dropping the flow); without it the gateway held the session and its upstream forever,
      // where the apiserver itself (keepalive on its connections) lets go. The kernel shows the keepalive timer.
      const gwPort = sharedGateway().port;
      const clientPorts = (await run('ss', ['-Htnp'])).stdout
        .split('\n')
        .filter((line) => line.includes(`pid=${pf.child.pid},`) && line.includes(`127.0.0.1:${gwPort} `))
        .map((line) => /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line)?.[1]);
      assert.ok(clientPorts.length > 0, 'kubectl port-forward holds a connection to the gateway');
      // ss shows one timer per socket: a retransmission timer ('on') hides the keepalive one while data is unacked.
      let gatewaySide: string[] = [];
      for (let i = 0; i < 30; i++) {
        gatewaySide = (await run('ss', ['-Htno'])).stdout
          .split('\n')
          .filter((line) => clientPorts.some((p) => line.includes(`127.0.0.1:${gwPort} `) && line.includes(`127.0.0.1:${p} `) && line.indexOf(`:${gwPort} `) < line.indexOf(`:${p} `)));
        if (gatewaySide.length > 0 && gatewaySide.every((line) => !line.includes('timer:(on,'))) break;
        await sleep(200);
      }
      assert.ok(gatewaySide.length > 0, 'the gateway side of the session is found');
      for (const line of gatewaySide) assert.match(line, /timer:\(keepalive,/, `the gateway keeps TCP keepalive on the session's connection: ${line}`);
      await sleep(70_000);
      assert.equal(pf.child.exitCode, null, `port-forward died while idle: ${pf.stderr}`);
      assert.equal((await localGet(localPort)).trim(), 'hello-from-pod');
    } finally {
      await pf.stop();
    }
  });

  it('the everyday commands work: scale, rollout status, describe, label, annotate, expose, events, auth can-i, explain, diff, apply --server-side, attach', async function () {
    this.timeout(240_000);
    const k = (args: string[], what: string, input?: string): Promise<string> =>
      mustSucceed(kubectl(aliceConfig, args, input !== undefined ? { input } : {}), what);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'daily' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'daily' } },
        template: {
          metadata: { labels: { app: 'daily' } },
          spec: {
            // The engine has no bridge network: without hostNetwork the kubelet stops the pod a second after it starts.
            hostNetwork: true,
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'main', image: e2eEnv().busyboxImage, imagePullPolicy: 'Never', command: ['sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done'] }],
          },
        },
      },
    };
    await k(['apply', '-f', '-'], 'apply', JSON.stringify(deployment));
    await k(['scale', 'deployment', 'daily', '--replicas=2'], 'scale');
    await k(['rollout', 'status', 'deployment/daily', '--timeout=120s'], 'rollout status');
    assert.match(await k(['describe', 'deployment', 'daily'], 'describe'), /Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available/);
    await k(['label', 'deployment', 'daily', 'tier=web'], 'label');
    await k(['annotate', 'deployment', 'daily', 'owner=alice'], 'annotate');
    assert.equal(await k(['get', 'deployment', 'daily', '-o', "jsonpath={.metadata.labels.tier}/{.metadata.annotations.owner}"], 'get'), 'web/alice');
    assert.match(await k(['expose', 'deployment', 'daily', '--port=80'], 'expose'), /service\/daily exposed/);
    assert.match(await k(['get', 'events', '--field-selector', 'involvedObject.name=daily'], 'events'), /ScalingReplicaSet/);
    assert.equal((await k(['auth', 'can-i', 'create', 'deployments'], 'auth can-i')).trim(), 'yes');
    const cannot = await kubectl(aliceConfig, ['auth', 'can-i', 'create', 'namespaces']);
    assert.equal(cannot.stdout.trim(), 'no', 'alice cannot create namespaces: the answer comes from the apiserver as alice');
    assert.match(await k(['explain', 'deployment.spec.replicas'], 'explain (OpenAPI through /k8s)'), /FIELD:\s+replicas/);
    // diff: exit 0 for no change, 1 for a difference (server-side dry run through the gateway).
    const same = await kubectl(aliceConfig, ['diff', '-f', '-'], { input: JSON.stringify(deployment).replace('"replicas":1', '"replicas":2') });
    assert.equal(same.code, 0, same.stderr + same.stdout);
    const changed = await kubectl(aliceConfig, ['diff', '-f', '-'], { input: JSON.stringify(deployment).replace('"replicas":1', '"replicas":3') });
    assert.equal(changed.code, 1, changed.stderr);
    assert.match(changed.stdout, /\+\s+replicas: 3/);
    assert.match(
      await k(['apply', '--server-side', '-f', '-'], 'server-side apply', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data: { a: 'b' } })),
      /configmap\/ssa serverside-applied/,
    );
    const pod = (await k(['get', 'pods', '-l', 'app=daily', '-o', 'jsonpath={.items[0].metadata.name}'], 'pod name')).trim();
    const attach = kubectlBackground(aliceConfig, ['attach', pod, '-c', 'main']);
    try {
      await attach.waitFor((out) => /tick-\d+\n.*tick-\d+\n/s.test(out), 30_000, 'kubectl attach output');
    } finally {
      await attach.stop();
    }
    await k(['delete', 'deployment/daily', 'service/daily', 'configmap/ssa', '--wait=false'], 'delete');
  });

  it('kubectl get --raw: without the /k8s prefix it is told where the API is; with it, it works', async () => {
    const missed = await kubectl(aliceConfig, ['get', '--raw', `/api/v1/namespaces/${ns}/configmaps`]);
    assert.notEqual(missed.code, 0);
    assert.match(missed.stderr, /NotFound.*under \/k8s on this gateway.*kubectl get --raw \/k8s\/api/);
    const list = JSON.parse(await mustSucceed(kubectl(aliceConfig, ['get', '--raw', `/k8s/api/v1/namespaces/${ns}/configmaps`]), 'get --raw with the prefix')) as { kind: string };
    assert.equal(list.kind, 'ConfigMapList');
  });

  it('helm install, list, upgrade, history and uninstall work with the tenant kubeconfig; bob sees no release', async function () {
    this.timeout(120_000);
    const chart = mkdtempSync(path.join(os.tmpdir(), 'zgw-chart-'));
    writeFileSync(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\n');
    mkdirSync(path.join(chart, 'templates'));
    writeFileSync(path.join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  greeting: {{ .Values.greeting | quote }}\n');
    const helmAs = (config: string, args: string[]) =>
      run(HELM, [...args, '--namespace', ns, '--kubeconfig', config], { env: { PATH: process.env.PATH ?? '', HOME: process.env.E2E_HOME ?? os.tmpdir() }, timeoutMs: 60_000 });
    const ok = async (args: string[]): Promise<string> => {
      const r = await helmAs(aliceConfig, args);
      if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
      return r.stdout;
    };
    await ok(['install', 'tiny', chart, '--set', 'greeting=hi']);
    assert.equal(await mustSucceed(kubectl(aliceConfig, ['get', 'configmap', 'tiny-settings', '-o', 'jsonpath={.data.greeting}']), 'get'), 'hi');
    assert.match(await ok(['list']), /tiny\s+\S+\s+1\s+.*deployed/);
    await ok(['upgrade', 'tiny', chart, '--set', 'greeting=hello-again']);
    assert.match(await ok(['history', 'tiny']), /2\s+.*deployed.*Upgrade complete/);
    assert.equal(await mustSucceed(kubectl(aliceConfig, ['get', 'configmap', 'tiny-settings', '-o', 'jsonpath={.data.greeting}']), 'get'), 'hello-again');
    const bobList = await helmAs(bobConfig, ['list']);
    assert.notEqual(bobList.code, 0, `bob listed alice's releases: ${bobList.stdout}`);
    assert.match(bobList.stderr, /forbidden/);
    await ok(['uninstall', 'tiny']);
    const gone = await kubectl(aliceConfig, ['get', 'configmap', 'tiny-settings']);
    assert.notEqual(gone.code, 0);
  });

  it('a user without a RoleBinding is denied by the real apiserver, its Status reaching kubectl unchanged', async () => {
    const res = await kubectl(bobConfig, ['get', 'pods']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /Error from server \(Forbidden\): pods is forbidden: User "keystone:bob" cannot list resource "pods"/);
  });

  describe('hostile headers sent with curl never gain anything', () => {
    const curl = (token: string, headers: readonly string[], urlPath: string) =>
      run('curl', [
        '-sS', '--cacert', e2eEnv().tlsCa, '-o', '-', '-w', '\n%{http_code}',
        '-H', `Authorization: Bearer ${token}`,
        ...headers.flatMap((h) => ['-H', h]),
        `${sharedGateway().url}/k8s${urlPath}`,
      ]);
    const statusOf = (out: string): number => Number(out.trim().split('\n').pop());

    it('Impersonate-User: admin and Impersonate-Group: system:masters are refused (403), never forwarded', async () => {
      const res = await curl(bob.token, ['Impersonate-User: admin', 'Impersonate-Group: system:masters', 'iMpErSoNaTe-GrOuP: system:masters'], `/api/v1/namespaces/${ns}/pods`);
      assert.equal(statusOf(res.stdout), 403);
      assert.match(res.stdout, /cannot be used through the gateway/);
      assert.doesNotMatch(res.stdout, /"kind":\s*"PodList"/);
    });

    it('kubectl --as and auth can-i --as fail saying why, instead of answering for the caller', async () => {
      for (const args of [['auth', 'can-i', 'delete', 'pods', '--as=system:anonymous'], ['get', 'pods', '--as=keystone:bob'], ['get', 'pods', '--as-group=system:masters', '--as=x']]) {
        const res = await kubectl(aliceConfig, args);
        assert.notEqual(res.code, 0, `${args.join(' ')}: ${res.stdout} ${res.stderr}`);
        assert.match(res.stderr, /kubectl --as, --as-group, --as-uid\) cannot be used through the gateway/, `${args.join(' ')}: ${res.stderr}`);
        assert.doesNotMatch(res.stdout, /^yes/m);
      }
    });

    it('Connection: Impersonate-User cannot strip the gateway identity headers', async () => {
      const res = await curl(bob.token, ['Connection: Impersonate-User', 'Impersonate-User: admin'], `/api/v1/namespaces/${ns}/pods`);
      const status = statusOf(res.stdout);
      assert.ok(status === 400 || status === 403, `expected a refusal, got ${status}: ${res.stdout}`);
      assert.doesNotMatch(res.stdout, /"kind":\s*"PodList"/);
    });

    it('X-Remote-User / X-Forwarded-For from the client do not make alice someone else', async () => {
      const res = await curl(alice.token, ['X-Remote-User: system:admin', 'X-Remote-Group: system:masters', 'X-Forwarded-For: 10.0.0.1'], `/api/v1/namespaces/kube-system/secrets`);
      assert.equal(statusOf(res.stdout), 403);
      assert.match(res.stdout, /keystone:alice/);
    });
  });

  describe('tokens', () => {
    it('an invalid token gets the gateway 401 message', async () => {
      const res = await kubectl(tenantKubeconfig(sharedGateway().url, 'gAAAAABnot-a-real-token', ns), ['get', 'pods']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /token is not valid/);
    });

    it('an expired token gets the gateway 401 message', async function () {
      this.timeout(60_000);
      // Keystone caps a token's expiry at its application credential's: a credential expiring in 4 s makes a
      // token that expires in 4 s.
      const t = await issueToken('alice', 'alpha');
      const ac = await createApplicationCredential(t.token, t.userId, `expiring-${randomBytes(3).toString('hex')}`, new Date(Date.now() + 4000));
      const short = await applicationCredentialToken(ac.id, ac.secret);
      assert.ok(Date.parse(short.expiresAt) - Date.now() < 10_000, `token expires at ${short.expiresAt}`);
      const config = tenantKubeconfig(sharedGateway().url, short.token, ns);
      await mustSucceed(kubectl(config, ['get', 'pods']), 'the token before it expires');
      await sleep(Math.max(0, Date.parse(short.expiresAt) - Date.now()) + 1500);
      const res = await kubectl(config, ['get', 'pods']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /You must be logged in to the server \(the token (is not valid|has expired)/);
    });

    it('a revoked token stops working within cacheTtlSeconds', async function () {
      this.timeout(60_000);
      const t = await issueToken('alice', 'alpha');
      const config = tenantKubeconfig(sharedGateway().url, t.token, ns);
      await mustSucceed(kubectl(config, ['get', 'pods']), 'get pods with a fresh token');
      await revokeToken(t.token);
      const deadline = Date.now() + (E2E_CACHE_TTL_SECONDS + 5) * 1000;
      let res = await kubectl(config, ['get', 'pods']);
      while (res.code === 0 && Date.now() < deadline) {
        await sleep(1000);
        res = await kubectl(config, ['get', 'pods']);
      }
      assert.notEqual(res.code, 0, 'the revoked token still works after cacheTtlSeconds');
      assert.match(res.stderr, /token is not valid/);
    });
  });

  it("a gateway started with a wrong service password: not ready, naming the setting; kubectl users are told it is the gateway's fault", async function () {
    this.timeout(60_000);
    const wrong = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS, servicePassword: `not-${randomBytes(6).toString('hex')}` });
    try {
      const ready = await httpsGet(`${wrong.url}/readyz`);
      assert.equal(ready?.status, 503);
      const checks = (JSON.parse(ready?.body ?? '{}') as { checks: Record<string, { ok: boolean; detail: string; blocking?: boolean }> }).checks;
      assert.deepEqual(checks.keystone, { ok: false, detail: "reachable, but Keystone refuses the gateway's service credentials (keystone.serviceCredentials, HTTP 401)", blocking: true });
      assert.equal(checks.k8s?.ok, true);
      const token = await issueToken('alice', 'alpha');
      // kubectl prints a Status message only for requests made once it knows the API: client-go reads discovery
      // answers raw, so with a cold discovery cache any 503 reads "the server is currently unable to handle the
      // request". The user here has used this gateway URL before (its discovery cache is warm), as after a restart
      // with a wrong password: the shared gateway's cache stands in for this one's.
      await mustSucceed(kubectl(tenantKubeconfig(sharedGateway().url, token.token, ns), ['get', 'pods']), 'warm the discovery cache');
      const discovery = path.join(process.env.E2E_HOME ?? os.tmpdir(), '.kube', 'cache', 'discovery');
      cpSync(path.join(discovery, `127.0.0.1_${sharedGateway().port}`), path.join(discovery, `127.0.0.1_${wrong.port}`), { recursive: true });
      const res = await kubectl(tenantKubeconfig(wrong.url, token.token, ns), ['get', 'pods']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /refuses the gateway's own service account.*not a fault of your token.*operator/);
      // The gateway writes its log in batches through a pipe: give the line a moment to land.
      const started = /not ready: Keystone check failed at start/;
      for (let i = 0; i < 50 && !started.test(readFileSync(wrong.logFile, 'utf8').slice(wrong.logOffset)); i += 1) await new Promise((r) => setTimeout(r, 100));
      assert.match(readFileSync(wrong.logFile, 'utf8').slice(wrong.logOffset), started);
    } finally {
      await wrong.stop();
    }
  });

  describe('Keystone stopped and started again', () => {
    after(async function () {
      this.timeout(120_000);
      await run(path.resolve('test/e2e/env/service'), ['keystone', 'start'], { timeoutMs: 110_000 });
    });

    it('new tokens get 503 with a clear message, cached ones keep working, recovery needs no gateway restart', async function () {
      this.timeout(180_000);
      const cached = await issueToken('alice', 'alpha');
      const fresh = await issueToken('alice', 'alpha');
      const cachedConfig = tenantKubeconfig(sharedGateway().url, cached.token, ns);
      const freshConfig = tenantKubeconfig(sharedGateway().url, fresh.token, ns);
      await mustSucceed(kubectl(cachedConfig, ['get', 'pods']), 'warm the cache');

      await mustSucceed(run(path.resolve('test/e2e/env/service'), ['keystone', 'stop'], { timeoutMs: 60_000 }), 'stop keystone');
      const down = await kubectl(freshConfig, ['get', 'pods']);
      assert.notEqual(down.code, 0);
      assert.match(down.stderr, /Keystone is unavailable/);
      assert.doesNotMatch(down.stderr, /Unauthorized|logged in/);
      await mustSucceed(kubectl(cachedConfig, ['get', 'pods']), 'a cached token while Keystone is down');

      await mustSucceed(run(path.resolve('test/e2e/env/service'), ['keystone', 'start'], { timeoutMs: 110_000 }), 'start keystone');
      await mustSucceed(kubectl(freshConfig, ['get', 'pods']), 'the new token once Keystone is back');
    });
  });
});
