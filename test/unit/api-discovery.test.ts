import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiDiscovery } from '../../src/k8s/api-discovery.js';
import type { K8sUpstream } from '../../src/k8s/upstream.js';
import { Upstream } from '../../src/proxy/upstream.js';

/** An apiserver's discovery as 1.20 has it (authentication.k8s.io/v1 with TokenReview only) or 1.28 (with SelfSubjectReview). */
const V1_20 = { resources: [{ name: 'tokenreviews', namespaced: false, kind: 'TokenReview', verbs: ['create'] }] };
const V1_28 = { resources: [...V1_20.resources, { name: 'selfsubjectreviews', namespaced: false, kind: 'SelfSubjectReview', verbs: ['create'] }] };

describe('what the apiserver serves, by resource (api-discovery)', () => {
  let server: http.Server;
  let upstream: Upstream;
  let answers: Record<string, { status: number; body: unknown }>;
  let asked: string[];

  before(async () => {
    server = http.createServer((req, res) => {
      asked.push(`${req.url ?? ''} ${req.headers.authorization ?? ''}`);
      const answer = answers[req.url ?? ''] ?? { status: 404, body: { kind: 'Status', code: 404 } };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstream = new Upstream(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { rejectUnauthorized: true });
  });
  beforeEach(() => {
    asked = [];
  });
  after(async () => {
    upstream.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const discovery = (): ApiDiscovery => {
    const k8s: K8sUpstream = { upstream, server: upstream.url.href, kubeConfig: new KubeConfig(), authorization: () => 'Bearer gateway-own', close: () => undefined };
    return new ApiDiscovery(k8s);
  };

  it('a group version served without the resource (1.20: authentication.k8s.io/v1 for TokenReview) does not serve it', async () => {
    answers = { '/apis/authentication.k8s.io/v1': { status: 200, body: V1_20 } };
    const d = discovery();
    assert.equal(await d.serves('authentication.k8s.io/v1', 'selfsubjectreviews'), false);
    assert.equal(await d.serves('authentication.k8s.io/v1', 'tokenreviews'), true);
    assert.equal(await d.serves('authentication.k8s.io/v1alpha1', 'selfsubjectreviews'), false, 'a group version not served (404)');
    assert.deepEqual(asked, ['/apis/authentication.k8s.io/v1 Bearer gateway-own', '/apis/authentication.k8s.io/v1alpha1 Bearer gateway-own'], 'asked once per group version, as the gateway');
  });

  it('the resource listed (1.28) is served; an unclear answer is not, and is asked again', async () => {
    answers = { '/apis/authentication.k8s.io/v1': { status: 200, body: V1_28 }, '/apis/authentication.k8s.io/v1beta1': { status: 503, body: {} } };
    const d = discovery();
    assert.equal(await d.serves('authentication.k8s.io/v1', 'selfsubjectreviews'), true);
    assert.equal(await d.serves('authentication.k8s.io/v1beta1', 'selfsubjectreviews'), false);
    assert.equal(await d.serves('authentication.k8s.io/v1beta1', 'selfsubjectreviews'), false);
    assert.equal(asked.filter((a) => a.startsWith('/apis/authentication.k8s.io/v1beta1 ')).length, 2);
  });
});
