import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selfSignedCert, startGatewayWithDoubles, startTestGateway, type GatewayWithDoubles, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';
import { silentLogger } from '../../src/observability/logger.js';
import { clusterAdmissionPaths, podAdmissionHandler } from '../../src/routes/pod-admission.js';
import { SERVICE_REQUEST, admissionReview } from '../helpers/admission-review.js';

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One HTTPS request to the gateway as the apiserver makes it: no token, no client certificate. */
function call(port: number, method: string, urlPath: string, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path: urlPath, rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A unique text inside the pod's contents: it must never reach the log. */
const SECRET_IN_POD = 'pod-content-7f3a9c';

function review(spec: Record<string, unknown>, name = 'probe'): string {
  const object = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    // Always, as the mutating webhook leaves it before the validating one is called.
    spec: { containers: [{ name: 'main', image: 'busybox', imagePullPolicy: 'Always', env: [{ name: 'X', value: SECRET_IN_POD }] }], ...spec },
  };
  return JSON.stringify(admissionReview(object, { uid: `uid-${name}` }));
}

const ADMISSION = '/admission/v1/pods';
const IMAGE_PULL = '/admission/v1/pods/image-pull-policy';

interface Answered {
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string } };
}
const answered = (res: Reply): Answered['response'] => (JSON.parse(res.body) as Answered).response;

/** The gateway reads the apiserver's /version at start, in the background: its log says when it has. */
const versionRead = (gateway: TestGateway, gitVersion: string): Promise<void> => gateway.logs.until(`"gitVersion":"${gitVersion}","msg":"kubernetes apiserver version read"`);

describe('the pod security admission webhook, served by the real gateway', () => {
  let doubles: GatewayWithDoubles;
  let gw: TestGateway;
  let upstream: RecordingUpstream;
  const otherGateway = (k8sYaml?: string) => startTestGateway({ keystoneUrl: doubles.keystone.url, upstreamUrl: upstream.url, tls: true, captureLogs: true, ...(k8sYaml !== undefined ? { k8sYaml } : {}) });

  before(async () => {
    // Mutual TLS on: the apiserver presents no client certificate to webhooks unless configured to.
    const anyCa = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'zgw-ca-'))).cert;
    doubles = await startGatewayWithDoubles({ tls: true, captureLogs: true, k8sYaml: '  tenancy: {}', tlsExtra: `clientCaFile: ${anyCa}` });
    ({ gw, upstream } = doubles);
  });
  after(() => doubles.stop());

  it('refuses a pod with hostPath /, hostPID, hostNetwork and a privileged container: 200 with allowed=false and the reason, no token needed', async () => {
    const body = review({ hostPID: true, hostNetwork: true, volumes: [{ name: 'root', hostPath: { path: '/' } }], containers: [{ name: 'main', image: 'b', securityContext: { privileged: true } }] }, 'evil');
    const res = await call(gw.port, 'POST', ADMISSION, body);
    assert.equal(res.status, 200, res.body);
    const answer = JSON.parse(res.body) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
    assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
    assert.equal(answer.kind, 'AdmissionReview');
    assert.equal(answer.response.uid, 'uid-evil');
    assert.equal(answer.response.allowed, false);
    assert.equal(answer.response.status.code, 403);
    for (const field of ['spec.hostNetwork=true', 'spec.hostPID=true', 'securityContext.privileged=true', '"root" hostPath']) {
      assert.ok(answer.response.status.message.includes(field), `${field} in ${answer.response.status.message}`);
    }
    assert.deepEqual(upstream.requests.filter((r) => r.url !== '/version'), [], "nothing reached the apiserver but the gateway's own read of its version");
  });

  it('allows an ordinary pod', async () => {
    const res = await call(gw.port, 'POST', ADMISSION, review({}));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-probe', allowed: true } });
  });

  it('answers what it cannot read with 400 and a body over 3 MiB with 413 (failurePolicy Fail refuses the pod)', async () => {
    assert.equal((await call(gw.port, 'POST', ADMISSION, '{"apiVersion":')).status, 400);
    const notReview = await call(gw.port, 'POST', ADMISSION, JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
    assert.equal(notReview.status, 400);
    assert.match(notReview.body, /AdmissionReview/);
    const huge = Buffer.alloc(3 * 1024 * 1024 + 1, 0x20);
    assert.equal((await call(gw.port, 'POST', ADMISSION, huge)).status, 413);
    // Just under the limit is read (and, being blanks, is not JSON).
    assert.equal((await call(gw.port, 'POST', ADMISSION, Buffer.alloc(3 * 1024 * 1024, 0x20))).status, 400);
  });

  it('a body still arriving after the read limit is answered 408 (nobody holds a connection by dripping bytes)', async () => {
    const never = (): never => assert.fail('the review was decided before it arrived');
    const server = http.createServer((req, res) => void podAdmissionHandler(never, {}, silentLogger(), 200)(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: ADMISSION, headers: { 'content-length': '1000' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('{"apiVersion":');
      });
      assert.equal(status, 408);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('serves POST only; under mutual TLS only the webhook paths go without a client certificate', async () => {
    assert.equal((await call(gw.port, 'GET', ADMISSION)).status, 404);
    assert.equal((await call(gw.port, 'POST', IMAGE_PULL, review({}))).status, 200, 'the mutating webhook too');
    const elsewhere = await call(gw.port, 'POST', '/admission/v1/deployments', review({}));
    assert.equal(elsewhere.status, 401);
    assert.match(elsewhere.body, /requires a client certificate/);
    assert.equal((await call(gw.port, 'GET', '/whoami')).status, 401);
  });

  it('says at start that pods are checked only when the apiserver calls the webhook, and where to learn how', () => {
    assert.match(gw.logs.text, /"podSecurityLevel":"baseline".*pods in project namespaces are checked only when the apiserver calls this gateway's webhook.*Pods without the Helm chart/);
  });

  it('logs the decision with names only, never the pod contents', async () => {
    await call(gw.port, 'POST', ADMISSION, review({ hostIPC: true }, 'logged-pod'));
    const line = gw.logs.lines.find((l) => l.includes('logged-pod'));
    assert.ok(line !== undefined, gw.logs.text);
    assert.match(line, /pod refused by pod security/);
    assert.match(line, /"checks":\["host namespaces"\]/);
    // One "level" key only: pino's own (a second one, the pod security level, hid it from log tools).
    assert.equal(line.match(/"level":/g)?.length, 1, line);
    assert.match(line, /"podSecurityLevel":"baseline"/);
    assert.doesNotMatch(gw.logs.text, new RegExp(SECRET_IN_POD));
  });

  it('logs a Service decision as a Service, not as a pod', async () => {
    const body = JSON.stringify(
      admissionReview(
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'logged-svc' }, spec: { ports: [{ port: 443 }], externalIPs: ['10.0.0.1'] } },
        { ...SERVICE_REQUEST, uid: 'uid-svc', name: 'logged-svc' },
      ),
    );
    const res = await call(gw.port, 'POST', ADMISSION, body);
    assert.equal((JSON.parse(res.body) as { response: { allowed: boolean } }).response.allowed, false);
    const line = gw.logs.lines.find((l) => l.includes('logged-svc'));
    assert.ok(line !== undefined, gw.logs.text);
    assert.match(line, /"service":"logged-svc".*"msg":"service refused \(externalIPs\)"/);
  });

  it('is not served without tenancy, and at level privileged allows everything with a warning at start', async () => {
    const plain = await otherGateway();
    try {
      assert.equal((await call(plain.port, 'POST', ADMISSION, review({}))).status, 404);
      assert.equal((await call(plain.port, 'POST', IMAGE_PULL, review({}))).status, 404);
    } finally {
      await plain.stop();
    }
    const open = await otherGateway('  tenancy: {podSecurity: {level: privileged}}');
    try {
      const res = await call(open.port, 'POST', ADMISSION, review({ hostPID: true }));
      assert.equal((JSON.parse(res.body) as { response: { allowed: boolean } }).response.allowed, true);
      assert.match(open.logs.text, /"level":40.*podSecurity\.level is privileged: pods in project namespaces are not checked/);
    } finally {
      await open.stop();
    }
  });

  it('restricted refuses what baseline allows', async () => {
    const strict = await otherGateway('  tenancy: {podSecurity: {level: restricted}}');
    try {
      const res = await call(strict.port, 'POST', ADMISSION, review({}));
      const answer = JSON.parse(res.body) as { response: { allowed: boolean; status: { message: string } } };
      assert.equal(answer.response.allowed, false);
      assert.match(answer.response.status.message, /"restricted:latest".*runAsNonRoot/);
    } finally {
      await strict.stop();
    }
  });

  it('the mutating webhook answers a JSONPatch setting imagePullPolicy Always on each container with an unshared image', async () => {
    const body = JSON.stringify(
      admissionReview(
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'bob-pod' },
          spec: {
            containers: [{ name: 'app', image: '127.0.0.1:5000/secret/app:1', imagePullPolicy: 'IfNotPresent' }],
            initContainers: [{ name: 'init', image: 'busybox', imagePullPolicy: 'Never' }],
          },
        },
        { uid: 'uid-mutate' },
      ),
    );
    const res = await call(gw.port, 'POST', IMAGE_PULL, body);
    assert.equal(res.status, 200, res.body);
    const answer = answered(res);
    assert.equal(answer.uid, 'uid-mutate');
    assert.equal(answer.allowed, true);
    assert.equal(answer.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(answer.patch ?? '', 'base64').toString('utf8')), [
      { op: 'add', path: '/spec/containers/0/imagePullPolicy', value: 'Always' },
      { op: 'add', path: '/spec/initContainers/0/imagePullPolicy', value: 'Always' },
    ]);
    assert.match(gw.logs.text, /"patched":\["spec\.containers\[0\] \\"app\\"","spec\.initContainers\[0\] \\"init\\""\].*"msg":"pod imagePullPolicy set to Always"/);
  });

  it('the validating webhook refuses a pod that still pulls from the cache (the mutating webhook was not registered)', async () => {
    const body = JSON.stringify(admissionReview({ metadata: { name: 'cached' }, spec: { containers: [{ name: 'app', image: 'private/app:1', imagePullPolicy: 'IfNotPresent' }] } }));
    const answer = answered(await call(gw.port, 'POST', ADMISSION, body));
    assert.equal(answer.allowed, false);
    assert.match(answer.status?.message ?? '', /pod "cached" would run images from the node's cache without asking their registry/);
  });

  it("refuses subPath on the apiserver's version v1.20.2, naming CVE-2021-25741 and the fixed versions", async () => {
    const body = review({ volumes: [{ name: 'v', emptyDir: {} }], containers: [{ name: 'main', image: 'b', imagePullPolicy: 'Always', volumeMounts: [{ name: 'v', mountPath: '/m', subPath: 'x' }] }] }, 'sub');
    await versionRead(gw, 'v1.20.2');
    const answer = answered(await call(gw.port, 'POST', ADMISSION, body));
    assert.equal(answer.allowed, false);
    assert.match(answer.status?.message ?? '', /subPath="x".*this cluster runs Kubernetes v1\.20\.2, which is affected by CVE-2021-25741 \(fixed in 1\.19\.15, 1\.20\.11, 1\.21\.5, 1\.22\.2/);
    assert.ok(upstream.requests.some((r) => r.method === 'GET' && r.url === '/version'), 'read from the apiserver');
  });

  it('allows subPath once it has read a fixed version (v1.22.2)', async () => {
    upstream.gitVersion = 'v1.22.2';
    const fixed = await otherGateway('  tenancy: {}');
    try {
      const body = review({ volumes: [{ name: 'v', emptyDir: {} }], containers: [{ name: 'main', image: 'b', imagePullPolicy: 'Always', volumeMounts: [{ name: 'v', mountPath: '/m', subPath: 'x' }] }] });
      await versionRead(fixed, 'v1.22.2');
      assert.equal(answered(await call(fixed.port, 'POST', ADMISSION, body)).allowed, true);
    } finally {
      upstream.gitVersion = 'v1.20.2';
      await fixed.stop();
    }
  });

  it("reviews RoleBindings: the namespace's project read from the apiserver; system: groups and other projects' groups refused", async () => {
    upstream.namespaceProjects.set('os-gamma', 'gamma-id');
    const binding = (subjects: unknown[]): string =>
      JSON.stringify(
        admissionReview(
          { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'open', namespace: 'os-gamma' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects },
          { kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding' }, resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings' }, namespace: 'os-gamma', name: 'open' },
        ),
      );
    const open = answered(await call(gw.port, 'POST', ADMISSION, binding([{ kind: 'Group', name: 'system:unauthenticated' }, { kind: 'Group', name: 'keystone:project:beta-id' }])));
    assert.equal(open.allowed, false);
    assert.match(open.status?.message ?? '', /Group "system:unauthenticated": a group of the cluster itself.*Group "keystone:project:beta-id": the group of another Keystone project.*k8s\.tenancy\.bindingSubjects/);
    const own = answered(await call(gw.port, 'POST', ADMISSION, binding([{ kind: 'Group', name: 'keystone:project:gamma-id:role:member' }])));
    assert.equal(own.allowed, true);
    assert.ok(upstream.requests.some((r) => r.method === 'GET' && r.url === '/api/v1/namespaces/os-gamma'), 'the owner read from the namespace');
    assert.match(gw.logs.text, /"rolebinding":"open".*"msg":"rolebinding refused \(subjects\)"/);
  });

  it('alwaysPullImages false: a warning naming the risk at start, and cached images pass', async () => {
    const open = await otherGateway('  tenancy: {alwaysPullImages: false}');
    try {
      assert.match(open.logs.text, /"level":40.*k8s\.tenancy\.alwaysPullImages is false: .*a private image one project pulled with its credentials runs for any other project/);
      const body = JSON.stringify(admissionReview({ metadata: { name: 'c' }, spec: { containers: [{ name: 'app', image: 'private/app:1', imagePullPolicy: 'IfNotPresent' }] } }));
      assert.equal(answered(await call(open.port, 'POST', ADMISSION, body)).allowed, true);
      assert.equal(answered(await call(open.port, 'POST', IMAGE_PULL, body)).patch, undefined);
    } finally {
      await open.stop();
    }
  });
});

describe("several clusters: each cluster's webhooks at its own path, judged with that cluster's facts", () => {
  let keystone: KeystoneDouble;
  let east: RecordingUpstream;
  let west: RecordingUpstream;
  let gw: TestGateway;
  const subPathPod = review({ volumes: [{ name: 'v', emptyDir: {} }], containers: [{ name: 'main', image: 'b', imagePullPolicy: 'Always', volumeMounts: [{ name: 'v', mountPath: '/m', subPath: 'x' }] }] }, 'sub');
  const ownBinding = JSON.stringify(
    admissionReview(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'mine', namespace: 'os-gamma' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'Group', name: 'keystone:project:gamma-id:role:member' }] },
      { kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding' }, resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings' }, namespace: 'os-gamma', name: 'mine' },
    ),
  );

  before(async () => {
    keystone = await new KeystoneDouble().start();
    [east, west] = await Promise.all([new RecordingUpstream().start(), new RecordingUpstream().start()]);
    // east is fixed for CVE-2021-25741, west is not; os-gamma is gamma's on west and unknown on east.
    east.gitVersion = 'v1.22.2';
    west.gitVersion = 'v1.20.2';
    west.namespaceProjects.set('os-gamma', 'gamma-id');
    const anyCa = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'zgw-ca-'))).cert;
    gw = await startTestGateway({
      keystoneUrl: keystone.url,
      upstreamUrl: 'unused',
      clusters: [
        { name: 'east', upstreamUrl: east.url },
        { name: 'west', upstreamUrl: west.url },
      ],
      k8sYaml: '  tenancy: {}',
      tls: true,
      tlsExtra: `clientCaFile: ${anyCa}`,
      captureLogs: true,
    });
    await Promise.all([versionRead(gw, 'v1.22.2'), versionRead(gw, 'v1.20.2')]);
  });
  after(async () => {
    await gw.stop();
    await Promise.all([east.stop(), west.stop(), keystone.stop()]);
  });

  it('subPath: refused at west\'s path (its apiserver is v1.20.2), allowed at east\'s and at /admission/v1/pods (the first cluster)', async () => {
    const atWest = answered(await call(gw.port, 'POST', clusterAdmissionPaths('west').pods, subPathPod));
    assert.equal(atWest.allowed, false);
    assert.match(atWest.status?.message ?? '', /this cluster runs Kubernetes v1\.20\.2/);
    assert.equal(answered(await call(gw.port, 'POST', clusterAdmissionPaths('east').pods, subPathPod)).allowed, true);
    assert.equal(answered(await call(gw.port, 'POST', ADMISSION, subPathPod)).allowed, true);
    assert.match(gw.logs.text, /"pod":"sub".*"allowed":false.*"cluster":"west","msg":"pod refused by subPath/);
  });

  it("a RoleBinding's namespace owner is read on the cluster that asks: gamma's own group allowed on west, not on east (unknown there)", async () => {
    assert.equal(answered(await call(gw.port, 'POST', clusterAdmissionPaths('west').pods, ownBinding)).allowed, true);
    assert.equal(answered(await call(gw.port, 'POST', clusterAdmissionPaths('east').pods, ownBinding)).allowed, false);
    assert.ok(west.requests.some((r) => r.url === '/api/v1/namespaces/os-gamma'));
    assert.ok(east.requests.some((r) => r.url === '/api/v1/namespaces/os-gamma'));
  });

  it("each cluster's mutating webhook; the cluster paths go without a client certificate, an unknown cluster's path is 404", async () => {
    const cached = JSON.stringify(admissionReview({ metadata: { name: 'c' }, spec: { containers: [{ name: 'app', image: 'private/app:1', imagePullPolicy: 'IfNotPresent' }] } }));
    for (const name of ['east', 'west']) assert.equal(answered(await call(gw.port, 'POST', clusterAdmissionPaths(name).imagePull, cached)).patchType, 'JSONPatch', name);
    assert.equal((await call(gw.port, 'POST', clusterAdmissionPaths('south').pods, cached)).status, 404);
    assert.equal((await call(gw.port, 'POST', '/admission/v1/clusters/west/deployments', cached)).status, 401, 'only the webhook paths go without a certificate');
  });
});
