import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { CoreV1Api, Exec, KubeConfig } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { e2eEnv } from './support/env.js';
import { sharedGateway } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import { adminKubectl, kubectl, kubectlBackground, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { run } from './support/run.js';

/**
 * The Kubernetes tools tenants already use, through the gateway with tenancy, against the real Keystone, apiserver
 * 1.20 and kubelet (issue 26, invariants.md 34 and 38): `kubectl get namespaces` (list, watch, table, JSON, selectors,
 * hostile raw queries), `kubectl get ns <other>` missing, `kubectl auth whoami` on an apiserver without
 * SelfSubjectReview, `kubectl auth can-i` (kubectl 1.32+ asks in protobuf), and the Python (Debian's
 * python3-kubernetes) and JavaScript (@kubernetes/client-node) clients listing and exec'ing over WebSocket.
 */

const PROJECT_LABEL = 'zun-gateway.openstack.org/project-id';
const PYTHON = '/usr/bin/python3';

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** One request to the gateway as a tenant, the path and query sent exactly as given (duplicates and all). */
function gatewayRequest(method: string, path: string, token: string, body?: { type: string; data: string | Buffer }): Promise<HttpAnswer> {
  const url = new URL(sharedGateway().url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        ca: readFileSync(e2eEnv().tlsCa),
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': body.type } : {}) },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body?.data);
  });
}

/** A watch through the gateway as a tenant, read as it streams (one JSON event a line). */
class WatchStream {
  readonly events: Array<{ type: string; name: string; labels: Record<string, string> }> = [];
  private readonly req: ReturnType<typeof https.request>;
  private readonly waiters: Array<() => void> = [];
  private rest = '';

  constructor(target: { url: string; ca: string; token: string }, path: string) {
    const url = new URL(target.url);
    this.req = https.request({ host: url.hostname, port: url.port, method: 'GET', path, ca: readFileSync(target.ca), headers: { authorization: `Bearer ${target.token}` } }, (res) => {
      res.on('data', (d: Buffer) => {
        const lines = (this.rest + d.toString('utf8')).split('\n');
        this.rest = lines.pop() ?? '';
        for (const line of lines.filter((l) => l.trim() !== '')) {
          const event = JSON.parse(line) as { type: string; object: { metadata?: { name?: string; labels?: Record<string, string> }; message?: string } };
          this.events.push({ type: event.type, name: event.object.metadata?.name ?? `(${event.object.message ?? 'no name'})`, labels: event.object.metadata?.labels ?? {} });
        }
        for (const w of this.waiters.splice(0)) w();
      });
    });
    this.req.on('error', () => undefined);
    this.req.end();
  }

  waitFor(predicate: (events: WatchStream['events']) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events)}`)), timeoutMs);
      const check = (): void => {
        if (predicate(this.events)) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    this.req.destroy();
  }
}

/** The apiserver's own answer to a tenant's query, asked as admin: the control that the query does match other namespaces. */
async function adminNamespaceNames(query: string): Promise<string[]> {
  const out = await mustSucceed(adminKubectl(['get', '--raw', `/api/v1/namespaces?${query}`]), `admin list ?${query}`);
  return (JSON.parse(out) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name).sort();
}

function namesOf(listJson: string): string[] {
  return (JSON.parse(listJson) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name).sort();
}

/** The NAME column of a `kubectl get` table. */
function tableNames(table: string): string[] {
  return table
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0] ?? '')
    .filter((n) => n !== '')
    .sort();
}

describe("the Kubernetes tools tenants already use: kubectl get ns, whoami, can-i, the Python and JavaScript clients (real apiserver 1.20)", function () {
  const tag = randomBytes(3).toString('hex');
  const pod = `tools-${tag}`;
  let aliceToken: string;
  let bobToken: string;
  let alice: string;
  let bob: string;
  let alphaId: string;
  let betaId: string;

  before(async function () {
    this.timeout(180_000);
    const version = await mustSucceed(run(e2eEnv().kubectl, ['version', '--client', '-o', 'json']), 'kubectl version');
    const minor = Number.parseInt((JSON.parse(version) as { clientVersion: { minor: string } }).clientVersion.minor, 10);
    if (!(minor >= 27)) throw new Error(`kubectl ${e2eEnv().kubectl} is 1.${minor}: auth whoami needs kubectl 1.27 or later; set E2E_KUBECTL to one (test/e2e/run picks kubectl.1.32)`);
    const a = await issueToken('alice', 'alpha');
    const b = await issueToken('bob', 'beta');
    [aliceToken, alphaId, bobToken, betaId] = [a.token, a.projectId, b.token, b.projectId];
    alice = tenantKubeconfig(sharedGateway().url, aliceToken, 'os-alpha');
    bob = tenantKubeconfig(sharedGateway().url, bobToken, 'os-beta');
    // The first request of each provisions their project's namespace.
    await mustSucceed(kubectl(bob, ['get', 'pods']), 'bob in his namespace');
    // A pod on the real kubelet for the clients' exec. The engine has no bridge network: hostNetwork, as elsewhere.
    await mustSucceed(
      kubectl(alice, ['run', pod, `--image=${e2eEnv().busyboxImage}`, '--image-pull-policy=Never', '--restart=Never', '--overrides={"spec":{"hostNetwork":true,"terminationGracePeriodSeconds":1}}', '--', 'sleep', '3600']),
      'kubectl run',
    );
    await mustSucceed(kubectl(alice, ['wait', '--for=condition=Ready', `pod/${pod}`, '--timeout=120s'], { timeoutMs: 150_000 }), 'pod Ready');
  });

  after(async function () {
    this.timeout(60_000);
    await adminKubectl(['delete', 'pod', pod, '-n', 'os-alpha', '--wait=false', '--ignore-not-found']);
  });

  describe('kubectl get namespaces: the project\'s own, made by the gateway with a selector it composes', () => {
    it('the default table, -o json and -l: alice sees os-alpha only, bob os-beta only (the admin sees both with the same selector)', async () => {
      assert.deepEqual(tableNames(await mustSucceed(kubectl(alice, ['get', 'ns']), 'alice get ns')), ['os-alpha']);
      assert.deepEqual(tableNames(await mustSucceed(kubectl(bob, ['get', 'namespaces']), 'bob get namespaces')), ['os-beta']);
      assert.deepEqual(namesOf(await mustSucceed(kubectl(alice, ['get', 'ns', '-o', 'json']), 'alice get ns -o json')), ['os-alpha']);
      const managed = 'app.kubernetes.io/managed-by=zun-gateway';
      assert.deepEqual(namesOf(await mustSucceed(kubectl(alice, ['get', 'ns', '-l', managed, '-o', 'json']), 'alice get ns -l')), ['os-alpha']);
      assert.deepEqual(namesOf(await mustSucceed(kubectl(bob, ['get', 'ns', '-l', managed, '-o', 'json']), 'bob get ns -l')), ['os-beta']);
      const both = await adminNamespaceNames(`labelSelector=${encodeURIComponent(managed)}`);
      assert.ok(both.includes('os-alpha') && both.includes('os-beta'), `the selector matches both for the admin: ${both.join(', ')}`);
      assert.deepEqual(tableNames(await mustSucceed(kubectl(alice, ['get', 'ns', '-l', 'no-such-label=x']), 'alice get ns -l (none)')), []);
    });

    it("hostile queries (kubectl get --raw and a raw https client) never widen it: a second labelSelector, an empty one, !=, set-based, a fieldSelector naming another namespace", async () => {
      const project = (id: string): string => encodeURIComponent(`${PROJECT_LABEL}=${id}`);
      const cases: Array<{ query: string; alice: string[]; adminSees?: string }> = [
        { query: 'labelSelector=', alice: ['os-alpha'] },
        { query: 'labelSelector=&labelSelector=', alice: ['os-alpha'] },
        { query: `labelSelector=${project(betaId)}&labelSelector=`, alice: [], adminSees: 'os-beta' },
        { query: `labelSelector=&labelSelector=${project(betaId)}`, alice: [], adminSees: 'os-beta' },
        { query: `labelSelector=${encodeURIComponent(`${PROJECT_LABEL}!=${alphaId}`)}`, alice: [], adminSees: 'os-beta' },
        { query: `labelSelector=${encodeURIComponent(`${PROJECT_LABEL} in (${alphaId},${betaId})`)}`, alice: ['os-alpha'], adminSees: 'os-beta' },
        { query: `labelSelector=${encodeURIComponent(`!${PROJECT_LABEL}`)}`, alice: [], adminSees: 'kube-system' },
        { query: `labelSelector=${encodeURIComponent(`${PROJECT_LABEL},kubernetes.io/metadata.name!=x`)}`, alice: ['os-alpha'] },
        { query: 'fieldSelector=metadata.name%3Dkube-system', alice: [], adminSees: 'kube-system' },
        { query: 'fieldSelector=metadata.name%3Dos-beta', alice: [], adminSees: 'os-beta' },
        { query: 'fieldSelector=metadata.name%3Dos-alpha', alice: ['os-alpha'] },
        // The parameter's name percent-encoded: the apiserver decodes it too, so it is one more labelSelector.
        { query: `label%53elector=${project(betaId)}`, alice: [], adminSees: 'os-beta' },
        { query: 'limit=1&labelSelector=', alice: ['os-alpha'] },
      ];
      for (const c of cases) {
        const viaKubectl = await mustSucceed(kubectl(alice, ['get', '--raw', `/k8s/api/v1/namespaces?${c.query}`]), `kubectl get --raw ?${c.query}`);
        assert.deepEqual(namesOf(viaKubectl), c.alice, `kubectl get --raw ?${c.query}`);
        const viaHttps = await gatewayRequest('GET', `/k8s/api/v1/namespaces?${c.query}`, aliceToken);
        assert.equal(viaHttps.status, 200, viaHttps.body);
        assert.deepEqual(namesOf(viaHttps.body), c.alice, `https ?${c.query}`);
        if (c.adminSees !== undefined) assert.ok((await adminNamespaceNames(c.query)).includes(c.adminSees), `control: the admin's ?${c.query} matches ${c.adminSees}`);
      }
    });

    it("watches (kubectl get ns -w, a resourceVersion watch with hostile selectors, the legacy /watch path) see alice's namespace change and nothing of bob's", async function () {
      this.timeout(120_000);
      const label = `e2e-tools-${tag}`;
      const aliceWatch = kubectlBackground(alice, ['get', 'ns', '-w', '--output-watch-events']);
      const bobWatch = kubectlBackground(bob, ['get', 'ns', '-w', '--output-watch-events']);
      const list = JSON.parse((await gatewayRequest('GET', '/k8s/api/v1/namespaces', aliceToken)).body) as { metadata: { resourceVersion: string } };
      const hostile = `labelSelector=&labelSelector=${encodeURIComponent(`${PROJECT_LABEL} in (${alphaId},${betaId})`)}`;
      const gw = { url: sharedGateway().url, ca: e2eEnv().tlsCa, token: aliceToken };
      const streams = [
        new WatchStream(gw, `/k8s/api/v1/namespaces?watch=1&resourceVersion=${list.metadata.resourceVersion}&${hostile}`),
        new WatchStream(gw, `/k8s/api/v1/watch/namespaces?resourceVersion=${list.metadata.resourceVersion}&labelSelector=`),
      ];
      try {
        await aliceWatch.waitFor((out) => /ADDED\s+os-alpha/.test(out), 30_000, "alice's watch lists os-alpha");
        await bobWatch.waitFor((out) => /ADDED\s+os-beta/.test(out), 30_000, "bob's watch lists os-beta");
        // bob's namespace changes first, then alice's: a watch stream is ordered, so once alice's change arrives, any
        // event of bob's would have come before it.
        await mustSucceed(adminKubectl(['label', 'ns', 'os-beta', `${label}=1`]), 'label os-beta');
        await mustSucceed(adminKubectl(['label', 'ns', 'os-alpha', `${label}=1`]), 'label os-alpha');
        await aliceWatch.waitFor((out) => /MODIFIED\s+os-alpha/.test(out), 30_000, "alice's watch sees os-alpha modified");
        await bobWatch.waitFor((out) => /MODIFIED\s+os-beta/.test(out), 30_000, "bob's watch sees os-beta modified");
        assert.doesNotMatch(aliceWatch.stdout, /os-beta|kube-system|default/);
        assert.doesNotMatch(bobWatch.stdout, /os-alpha|kube-system|default/);
        for (const stream of streams) {
          await stream.waitFor((events) => events.some((e) => e.type === 'MODIFIED' && e.name === 'os-alpha' && e.labels[label] === '1'), 'the raw watch sees os-alpha labelled');
          assert.deepEqual([...new Set(stream.events.map((e) => e.name))], ['os-alpha'], JSON.stringify(stream.events));
        }
      } finally {
        for (const stream of streams) stream.close();
        await aliceWatch.stop();
        await bobWatch.stop();
        await adminKubectl(['label', 'ns', 'os-alpha', 'os-beta', `${label}-`]);
      }
    });

    it("another namespace looks missing (404 NotFound, as on a cluster of the project's own); its own is there", async () => {
      for (const other of ['kube-system', 'os-beta', 'default', `no-such-${tag}`]) {
        const res = await kubectl(alice, ['get', 'ns', other]);
        assert.notEqual(res.code, 0);
        assert.match(res.stderr, new RegExp(`Error from server \\(NotFound\\): namespaces "${other}" not found`));
        const raw = await gatewayRequest('GET', `/k8s/api/v1/namespaces/${other}`, aliceToken);
        assert.equal(raw.status, 404);
        assert.equal((JSON.parse(raw.body) as { reason: string }).reason, 'NotFound');
      }
      assert.deepEqual(tableNames(await mustSucceed(kubectl(alice, ['get', 'ns', 'os-alpha']), 'get ns os-alpha')), ['os-alpha']);
      assert.match((await kubectl(bob, ['get', 'ns', 'os-alpha'])).stderr, /namespaces "os-alpha" not found/);
    });
  });

  describe('who am I, what may I', () => {
    it('kubectl auth whoami (the 1.20 apiserver has no SelfSubjectReview) prints the impersonated user and groups', async () => {
      const table = await mustSucceed(kubectl(alice, ['auth', 'whoami']), 'kubectl auth whoami');
      assert.match(table, /^Username\s+keystone:alice$/m);
      const json = JSON.parse(await mustSucceed(kubectl(alice, ['auth', 'whoami', '-o', 'json']), 'whoami -o json')) as { kind: string; status: { userInfo: { username: string; groups: string[]; extra?: Record<string, string[]> } } };
      assert.equal(json.kind, 'SelfSubjectReview');
      assert.equal(json.status.userInfo.username, 'keystone:alice');
      assert.deepEqual(json.status.userInfo.groups, [`keystone:project:${alphaId}`, `keystone:project:${alphaId}:role:member`, `keystone:project:${alphaId}:role:reader`, 'system:authenticated']);
      assert.deepEqual(json.status.userInfo.extra?.['keystone-project-id'], [alphaId]);
      for (const group of json.status.userInfo.groups) assert.match(table, new RegExp(group.replace(/[.:]/g, '\\$&')));
      // The same groups are what the apiserver authorizes: a role bound to alice's member group answers for her.
      assert.match((await kubectl(alice, ['auth', 'can-i', 'create', 'deployments'])).stdout, /^yes$/m);
      const bobs = JSON.parse(await mustSucceed(kubectl(bob, ['auth', 'whoami', '-o', 'json']), 'bob whoami')) as { status: { userInfo: { username: string; groups: string[] } } };
      assert.equal(bobs.status.userInfo.username, 'keystone:bob');
      assert.ok(bobs.status.userInfo.groups.includes(`keystone:project:${betaId}`));
    });

    it('every served version of SelfSubjectReview (v1, v1beta1, v1alpha1) is answered for the caller', async () => {
      for (const version of ['v1', 'v1beta1', 'v1alpha1']) {
        const res = await gatewayRequest('POST', `/k8s/apis/authentication.k8s.io/${version}/selfsubjectreviews`, aliceToken, {
          type: 'application/json',
          data: JSON.stringify({ apiVersion: `authentication.k8s.io/${version}`, kind: 'SelfSubjectReview' }),
        });
        assert.equal(res.status, 201, res.body);
        const review = JSON.parse(res.body) as { apiVersion: string; status: { userInfo: { username: string } } };
        assert.equal(review.apiVersion, `authentication.k8s.io/${version}`);
        assert.equal(review.status.userInfo.username, 'keystone:alice');
      }
    });

    it('kubectl auth can-i list|watch|get namespaces says yes (kubectl asks in protobuf), another namespace by name and writes no', async () => {
      const canI = async (args: string[]): Promise<string> => (await kubectl(alice, ['auth', 'can-i', ...args])).stdout.trim();
      assert.equal(await canI(['list', 'namespaces']), 'yes');
      assert.equal(await canI(['watch', 'namespaces', '-A']), 'yes');
      assert.equal(await canI(['get', 'namespaces/os-alpha']), 'yes');
      assert.match(await canI(['get', 'namespaces/kube-system']), /^no/);
      assert.equal(await canI(['create', 'namespaces']), 'no', "the apiserver's answer for alice");
      assert.equal(await canI(['list', 'pods', '-n', 'kube-system']), 'no');
      const json = await gatewayRequest('POST', '/k8s/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', aliceToken, {
        type: 'application/json',
        data: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'list', resource: 'namespaces', namespace: 'default' } } }),
      });
      assert.equal(json.status, 201, json.body);
      assert.equal((JSON.parse(json.body) as { status: { allowed: boolean } }).status.allowed, true, 'asked in JSON');
    });

    it('kubectl auth can-i --list -n os-alpha prints the rules the apiserver holds for alice there', async () => {
      const res = await kubectl(alice, ['auth', 'can-i', '--list', '-n', 'os-alpha']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs$/m);
      assert.match(res.stdout, /^pods\s+\[\]\s+\[\]\s+\[.*\bcreate\b.*\]$/m);
      assert.match(res.stdout, /^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]$/m);
      assert.doesNotMatch(res.stdout, /^\*\.\*/m, 'no cluster-wide wildcard');
    });
  });

  describe('the Kubernetes client libraries, set up against the gateway with a token', () => {
    it("Debian's python3-kubernetes lists namespaces and pods and execs over WebSocket into a pod on the real kubelet", async function () {
      this.timeout(120_000);
      if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: install Debian's python3-kubernetes (test/e2e/env/up does)`);
      const script = `
import json, sys
from kubernetes import client
from kubernetes.stream import stream
host, ca, token, pod = sys.argv[1:5]
c = client.Configuration()
c.host = host
c.ssl_ca_cert = ca
c.api_key = {"authorization": token}
c.api_key_prefix = {"authorization": "Bearer"}
api = client.CoreV1Api(client.ApiClient(c))
seen = {"namespaces": [n.metadata.name for n in api.list_namespace().items]}
seen["pods"] = [p.metadata.name for p in api.list_namespaced_pod("os-alpha").items]
seen["exec"] = stream(api.connect_get_namespaced_pod_exec, pod, "os-alpha", command=["sh", "-c", "echo exec-$((40+2))"], stderr=True, stdin=False, stdout=True, tty=False)
print(json.dumps(seen))
`;
      // REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE (exported on some machines) would replace the client's own CA: not passed.
      const res = await run(PYTHON, ['-c', script, `${sharedGateway().url}/k8s`, e2eEnv().tlsCa, aliceToken, pod], { env: { PATH: process.env.PATH ?? '' }, timeoutMs: 90_000 });
      if (res.code !== 0 && /No module named 'kubernetes'/.test(res.stderr)) throw new Error(`python3-kubernetes is missing under ${PYTHON}: install Debian's python3-kubernetes (test/e2e/env/up does)`);
      assert.equal(res.code, 0, res.stderr);
      const seen = JSON.parse(res.stdout) as { namespaces: string[]; pods: string[]; exec: string };
      assert.deepEqual(seen.namespaces, ['os-alpha']);
      assert.ok(seen.pods.includes(pod), seen.pods.join(', '));
      assert.equal(seen.exec, 'exec-42\n');
    });

    it('@kubernetes/client-node lists namespaces and execs over WebSocket from a kubeconfig', async function () {
      this.timeout(60_000);
      const kc = new KubeConfig();
      kc.loadFromFile(alice);
      const api = kc.makeApiClient(CoreV1Api);
      assert.deepEqual((await api.listNamespace()).items.map((n) => n.metadata?.name), ['os-alpha']);
      let out = '';
      const stdout = new Writable({
        write(chunk: Buffer, _encoding, done) {
          out += chunk.toString('utf8');
          done();
        },
      });
      const status = await new Promise<unknown>((resolve, reject) => {
        new Exec(kc).exec('os-alpha', pod, pod, ['sh', '-c', 'echo js-$((40+2))'], stdout, null, null, false, resolve).catch(reject);
      });
      assert.equal((status as { status?: string }).status, 'Success');
      assert.equal(out, 'js-42\n');
    });
  });
});
