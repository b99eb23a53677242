import assert from 'node:assert/strict';
import { composeSelector, namespaceNotFound, namespaceRead, namespaceReadReview, projectNamespacesPath, selfSubjectReview, selfSubjectReviewVersion } from '../../src/k8s/tenant-views.js';

const OURS = 'zun-gateway.openstack.org/project-id=p-alpha';
const selectorOf = (path: string | undefined): string | null => new URLSearchParams((path ?? '').split('?')[1] ?? '').get('labelSelector');

describe("a tenant's view of cluster-scoped reads (pure)", () => {
  it('lists and watches of namespaces get the project requirement, after whatever the client selected', () => {
    assert.equal(selectorOf(projectNamespacesPath('GET', '/api/v1/namespaces', 'p-alpha')), OURS);
    assert.equal(selectorOf(projectNamespacesPath('GET', '/api/v1/namespaces?watch=1&resourceVersion=5', 'p-alpha')), OURS);
    assert.equal(selectorOf(projectNamespacesPath('GET', '/api/v1/watch/namespaces', 'p-alpha')), OURS);
    assert.equal(selectorOf(projectNamespacesPath('GET', '/api/v1/namespaces?labelSelector=team%3Dweb', 'p-alpha')), `team=web,${OURS}`);
    const watch = new URLSearchParams((projectNamespacesPath('GET', '/api/v1/namespaces?watch=1&resourceVersion=5&fieldSelector=metadata.name%3Dkube-system', 'p-alpha') ?? '').split('?')[1]);
    assert.equal(watch.get('watch'), '1');
    assert.equal(watch.get('resourceVersion'), '5');
    assert.equal(watch.get('fieldSelector'), 'metadata.name=kube-system', "a field selector narrows, never widens: it is ANDed with the project's label");
  });

  it("hostile selectors cannot widen it: a second labelSelector, an empty one, negations, set-based forms (capsule-proxy's escapes)", () => {
    for (const query of [
      'labelSelector=&labelSelector=',
      'labelSelector=a%3Db&labelSelector=',
      'labelSelector=zun-gateway.openstack.org%2Fproject-id%3Dp-beta',
      'labelSelector=zun-gateway.openstack.org%2Fproject-id!%3Dp-alpha',
      'labelSelector=zun-gateway.openstack.org%2Fproject-id+in+(p-alpha,p-beta)',
      'labelSelector=!zun-gateway.openstack.org%2Fproject-id',
      'labelSelector=x,y&labelSelector=z',
    ]) {
      const composed = new URLSearchParams((projectNamespacesPath('GET', `/api/v1/namespaces?${query}`, 'p-alpha') ?? '').split('?')[1]);
      assert.equal(composed.getAll('labelSelector').length, 1, query);
      const selector = composed.get('labelSelector') as string;
      assert.ok(selector.endsWith(`,${OURS}`) || selector === OURS, `${query} -> ${selector}`);
    }
    assert.equal(composeSelector(new URLSearchParams('labelSelector=a&labelSelector=b'), 'p').get('labelSelector'), 'a,b,zun-gateway.openstack.org/project-id=p');
  });

  it('only GETs of the namespace collection are views; a namespace read names its namespace; writes are left to RBAC', () => {
    assert.equal(projectNamespacesPath('POST', '/api/v1/namespaces', 'p'), undefined);
    assert.equal(projectNamespacesPath('GET', '/api/v1/namespaces/os-alpha/pods', 'p'), undefined);
    assert.equal(namespaceRead('GET', '/api/v1/namespaces/os-alpha'), 'os-alpha');
    assert.equal(namespaceRead('GET', '/api/v1/namespaces/os%2Dbeta?x=1'), 'os-beta');
    assert.equal(namespaceRead('GET', '/api/v1/namespaces/os-alpha/pods'), undefined);
    assert.equal(namespaceRead('DELETE', '/api/v1/namespaces/os-alpha'), undefined);
    assert.deepEqual(namespaceNotFound('kube-system'), {
      status: 404,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'namespaces "kube-system" not found', reason: 'NotFound', details: { name: 'kube-system', kind: 'namespaces' }, code: 404 },
    });
  });

  it('kubectl auth whoami: exactly the impersonated user, groups and extras, with system:authenticated', () => {
    assert.equal(selfSubjectReviewVersion('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews'), 'v1');
    assert.equal(selfSubjectReviewVersion('POST', '/apis/authentication.k8s.io/v1alpha1/selfsubjectreviews'), 'v1alpha1');
    assert.equal(selfSubjectReviewVersion('GET', '/apis/authentication.k8s.io/v1/selfsubjectreviews'), undefined);
    const lines = ['Impersonate-User', 'keystone:alice', 'Impersonate-Group', 'keystone:project:p', 'Impersonate-Group', 'keystone:project:p:role:member', 'Impersonate-Extra-keystone-user-id', 'u1'];
    assert.deepEqual(selfSubjectReview('v1beta1', lines), {
      status: 201,
      body: {
        kind: 'SelfSubjectReview',
        apiVersion: 'authentication.k8s.io/v1beta1',
        metadata: { creationTimestamp: null },
        status: { userInfo: { username: 'keystone:alice', groups: ['keystone:project:p', 'keystone:project:p:role:member', 'system:authenticated'], extra: { 'keystone-user-id': ['u1'] } } },
      },
    });
  });

  it('kubectl auth can-i: reading the namespace collection or its own namespace is the view, whatever namespace kubectl adds; anything else is the apiserver\'s to say', () => {
    const review = (attributes: Record<string, unknown>) => ({ spec: { resourceAttributes: attributes } });
    assert.equal(namespaceReadReview(review({ verb: 'list', resource: 'namespaces' }), 'os-alpha'), true);
    assert.equal(namespaceReadReview(review({ verb: 'watch', resource: 'namespaces', group: '' }), 'os-alpha'), true);
    // kubectl sends its context's namespace (or default) with every can-i: namespaces are cluster-scoped, it is not read.
    assert.equal(namespaceReadReview(review({ verb: 'list', resource: 'namespaces', namespace: 'default' }), 'os-alpha'), true);
    assert.equal(namespaceReadReview(review({ verb: 'get', resource: 'namespaces', name: 'os-alpha', namespace: 'os-alpha' }), 'os-alpha'), true);
    assert.equal(namespaceReadReview(review({ verb: 'get', resource: 'namespaces', name: 'kube-system' }), 'os-alpha'), false, 'another namespace looks missing');
    assert.equal(namespaceReadReview(review({ verb: 'delete', resource: 'namespaces' }), 'os-alpha'), undefined);
    assert.equal(namespaceReadReview(review({ verb: 'list', resource: 'pods' }), 'os-alpha'), undefined);
    assert.equal(namespaceReadReview(review({ verb: 'list', resource: 'namespaces', group: 'example.com' }), 'os-alpha'), undefined);
    assert.equal(namespaceReadReview(review({ verb: 'get', resource: 'namespaces', subresource: 'status' }), 'os-alpha'), undefined);
    assert.equal(namespaceReadReview({ spec: { nonResourceAttributes: { path: '/', verb: 'get' } } }, 'os-alpha'), undefined);
  });
});
