import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selfSignedCert, startGatewayWithDoubles, startTestGateway, type GatewayWithDoubles, type TestGateway } from '../helpers/gateway.js';
import type { RecordingUpstream } from '../helpers/recording-upstream.js';
import { silentLogger } from '../../src/observability/logger.js';
import { podAdmissionHandler } from '../../src/routes/pod-admission.js';
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
    spec: { containers: [{ name: 'main', image: 'busybox', env: [{ name: 'X', value: SECRET_IN_POD }] }], ...spec },
  };
  return JSON.stringify(admissionReview(object, { uid: `uid-${name}` }));
}

const ADMISSION = '/admission/v1/pods';

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
    assert.equal(upstream.requests.length, 0, 'nothing reached the apiserver');
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
    const server = http.createServer((req, res) => void podAdmissionHandler('baseline', silentLogger(), 200)(req, res));
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

  it('serves POST only; under mutual TLS only this path goes without a client certificate', async () => {
    assert.equal((await call(gw.port, 'GET', ADMISSION)).status, 404);
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
});
