import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { K8sConfig } from '../../src/config/schema.js';

const keystone = `keystone:
  authUrl: http://127.0.0.1:5000/v3
  serviceCredentials: {applicationCredentialId: a, applicationCredentialSecret: s}
`;

const k8sOf = (yaml: string): K8sConfig => {
  const config = parseConfig(`${keystone}${yaml}`, {});
  assert.ok(config.k8s !== undefined);
  return config.k8s;
};

const refused = (yaml: string, message: RegExp): void => {
  assert.throws(() => parseConfig(`${keystone}${yaml}`, {}), (e: Error) => {
    assert.match(e.message, message);
    return true;
  });
};

describe('configuration: k8s.clusters', () => {
  it('the single-cluster keys stay valid and mean one cluster named default, with every setting resolved', () => {
    const k8s = k8sOf('k8s: {kubeconfig: /etc/kc, context: c1, http2Watches: false, responseHeaderTimeoutSeconds: 30, tenancy: {}}');
    assert.equal(k8s.clusters.length, 1);
    const [only] = k8s.clusters;
    assert.equal(only?.name, 'default');
    assert.equal(only?.configKey, 'k8s');
    assert.equal(only?.kubeconfig, '/etc/kc');
    assert.equal(only?.context, 'c1');
    assert.equal(only?.http2Watches, false);
    assert.equal(only?.http2Requests, false);
    assert.equal(only?.responseHeaderTimeoutSeconds, 30);
    assert.equal(only?.tenancy?.namespaceTemplate, 'os-{project_name}');
    assert.equal(only?.projectTags, undefined);
  });

  it('no kubeconfig at all: one cluster, the in-cluster service account, no tenancy unless k8s.tenancy', () => {
    const [only] = k8sOf('k8s: {}').clusters;
    assert.equal(only?.name, 'default');
    assert.equal(only?.kubeconfig, undefined);
    assert.equal(only?.tenancy, undefined);
  });

  it('several clusters: in order, each with the shared settings unless it sets its own, tenancy overridden key by key', () => {
    const k8s = k8sOf(`k8s:
  http2Watches: false
  http2Requests: true
  responseHeaderTimeoutSeconds: 45
  tenancy: {namespaceTemplate: "t-{project_id}", resourceQuota: {pods: 10}, podSecurity: {level: restricted}}
  clusters:
    - name: east
      kubeconfig: /etc/east
    - name: west
      kubeconfig: /etc/west
      context: w
      projectTags: [west, gpu]
      http2Watches: true
      http2Requests: false
      responseHeaderTimeoutSeconds: 0
      tenancy: {resourceQuota: {pods: 3}, roleBindings: {member: view}}
`);
    assert.deepEqual(k8s.clusters.map((c) => c.name), ['east', 'west']);
    const [east, west] = k8s.clusters;
    assert.equal(east?.configKey, 'k8s.clusters[0]');
    assert.equal(east?.http2Watches, false);
    assert.equal(east?.http2Requests, true);
    assert.equal(east?.responseHeaderTimeoutSeconds, 45);
    assert.deepEqual(east?.tenancy?.resourceQuota, { pods: '10' });
    assert.deepEqual(east?.tenancy?.roleBindings, { admin: 'admin', member: 'edit', reader: 'view' });
    assert.equal(west?.configKey, 'k8s.clusters[1]');
    assert.equal(west?.context, 'w');
    assert.deepEqual(west?.projectTags, ['west', 'gpu']);
    assert.equal(west?.http2Watches, true);
    assert.equal(west?.http2Requests, false);
    assert.equal(west?.responseHeaderTimeoutSeconds, 0);
    assert.deepEqual(west?.tenancy?.resourceQuota, { pods: '3' });
    assert.deepEqual(west?.tenancy?.roleBindings, { member: 'view' });
    // What the cluster leaves out comes from k8s.tenancy, pod security included.
    assert.equal(west?.tenancy?.namespaceTemplate, 't-{project_id}');
    assert.equal(west?.tenancy?.podSecurity.level, 'restricted');
    assert.equal(west?.tenancy?.recheckSeconds, 600);
  });

  it('k8s.kubeconfig or k8s.context together with k8s.clusters: an error saying which to keep', () => {
    refused(
      'k8s: {kubeconfig: /etc/kc, clusters: [{name: east}]}',
      /k8s\.kubeconfig: given together with k8s\.clusters: keep k8s\.clusters and move the kubeconfig into the cluster it belongs to \(clusters: \[\{name: \.\.\., kubeconfig: \.\.\.\}\]\), or remove k8s\.clusters to serve this one cluster/,
    );
    refused('k8s: {context: c, clusters: [{name: east}]}', /k8s\.context: given together with k8s\.clusters: keep k8s\.clusters and move the context/);
  });

  it('cluster names are unique DNS-1123 labels', () => {
    refused('k8s: {clusters: [{name: east}, {name: east}]}', /k8s\.clusters\.1\.name: another cluster is already named east: names must be unique/);
    refused('k8s: {clusters: [{name: East}]}', /k8s\.clusters\.0\.name: must be a DNS-1123 label/);
    refused('k8s: {clusters: [{name: "east/1"}]}', /k8s\.clusters\.0\.name: must be a DNS-1123 label/);
    refused(`k8s: {clusters: [{name: ${'a'.repeat(64)}}]}`, /k8s\.clusters\.0\.name: must be at most 63 characters/);
    refused('k8s: {clusters: [{kubeconfig: /x}]}', /k8s\.clusters\.0\.name: missing \(required\)/);
  });

  it('an empty list of clusters or of project tags is refused with what to do instead', () => {
    refused('k8s: {clusters: []}', /k8s\.clusters: list at least one cluster, or leave k8s\.clusters out for one cluster/);
    refused('k8s: {clusters: [{name: east, projectTags: []}]}', /k8s\.clusters\.0\.projectTags: list at least one tag, or leave projectTags out/);
  });

  it("a cluster's tenancy: pod security stays shared, and it needs k8s.tenancy to change", () => {
    refused(
      'k8s: {tenancy: {}, clusters: [{name: east, tenancy: {podSecurity: {level: privileged}}}]}',
      /k8s\.clusters\.0\.tenancy\.podSecurity: is one level for every cluster .*: set it in k8s\.tenancy/,
    );
    refused('k8s: {clusters: [{name: east, tenancy: {recheckSeconds: 5}}]}', /k8s\.clusters\.0\.tenancy: changes k8s\.tenancy for this cluster, but k8s\.tenancy is not set/);
    refused('k8s: {tenancy: {}, clusters: [{name: east, tenancy: {namespaceTemplate: "x-{user}"}}]}', /k8s\.clusters\.0\.tenancy\.namespaceTemplate: may only use the placeholders/);
    refused('k8s: {clusters: [{name: east, kubeconfg: /x}]}', /k8s\.clusters\.0: unknown key\(s\) 'kubeconfg'/);
  });
});
