import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { sample } from '../helpers/prometheus-text.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream, headerLines, type Recorded } from '../helpers/recording-upstream.js';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly json: () => Record<string, unknown>;
}

function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) as Record<string, unknown> }));
      })
      .on('error', reject);
  });
}

const alice = { 'x-auth-token': 'alice-token' };
const bob = { 'x-auth-token': 'bob-token' };
const statusMessage = (a: Answer): string => {
  const body = a.json();
  assert.equal(body.kind, 'Status', a.body);
  return String(body.message);
};
const authorizationOf = (r: Recorded): string[] => headerLines(r.rawHeaders, 'authorization');

describe('several clusters behind /k8s (two recording apiservers, Keystone double with project tags)', function () {
  let keystone: KeystoneDouble;
  let east: RecordingUpstream;
  let west: RecordingUpstream;
  let gw: TestGateway;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    east = await new RecordingUpstream().start();
    west = await new RecordingUpstream().start();
    // alpha carries the tag that opens west; beta carries none.
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    keystone.register('bob-token', { user: 'bob', project: { id: 'p-beta', name: 'beta' }, roles: ['member'] });
    keystone.projectTags.set('p-alpha', ['west']);
    gw = await startTestGateway({
      keystoneUrl: keystone.url,
      upstreamUrl: 'unused',
      clusters: [
        { name: 'east', upstreamUrl: east.url },
        { name: 'west', upstreamUrl: west.url, yaml: 'projectTags: [west, gpu]' },
      ],
    });
  });

  after(async () => {
    await gw.stop();
    await east.stop();
    await west.stop();
    await keystone.stop();
  });

  it('/k8s/clusters/<name>/... reaches that cluster only, as /k8s/... does, with that cluster\'s own credentials', async () => {
    const [eastBefore, westBefore] = [east.requests.length, west.requests.length];
    const res = await get(`${gw.url}/k8s/clusters/west/api/v1/namespaces/os-alpha/pods?labelSelector=a%3Db`, alice);
    assert.equal(res.status, 200, res.body);
    assert.equal(east.requests.length, eastBefore, 'nothing reached east');
    assert.equal(west.requests.length, westBefore + 1);
    const sent = west.last();
    assert.equal(sent.url, '/api/v1/namespaces/os-alpha/pods?labelSelector=a%3Db');
    assert.deepEqual(authorizationOf(sent), ['Bearer gateway-sa-token-west']);
    assert.deepEqual(headerLines(sent.rawHeaders, 'host'), [`127.0.0.1:${west.port}`]);
    assert.deepEqual(headerLines(sent.rawHeaders, 'impersonate-user'), ['keystone:alice']);

    const eastRes = await get(`${gw.url}/k8s/clusters/east/apis/apps/v1/deployments`, bob);
    assert.equal(eastRes.status, 200, eastRes.body);
    assert.equal(east.last().url, '/apis/apps/v1/deployments');
    assert.deepEqual(authorizationOf(east.last()), ['Bearer gateway-sa-token-east']);
    assert.equal(west.requests.length, westBefore + 1);
  });

  it('/k8s itself is the first cluster (kubeconfigs made for one cluster keep working); a name is looked up decoded', async () => {
    const westBefore = west.requests.length;
    assert.equal((await get(`${gw.url}/k8s/version`, bob)).status, 200);
    assert.equal(east.last().url, '/version');
    assert.equal(west.requests.length, westBefore);
    assert.equal((await get(`${gw.url}/k8s/clusters/%77est/version`, alice)).status, 200);
    assert.equal(west.last().url, '/version');
    assert.equal((await get(`${gw.url}/k8s/clusters/east`, bob)).status, 200);
    assert.equal(east.last().url, '/');
  });

  it('an unknown cluster: 404 Status naming the clusters the caller may use, and no other; unauthenticated: 401 and no names', async () => {
    const before = east.requests.length + west.requests.length;
    const forAlice = await get(`${gw.url}/k8s/clusters/north/api/v1/pods`, alice);
    assert.equal(forAlice.status, 404);
    assert.equal(statusMessage(forAlice), 'this gateway has no cluster named north; the clusters you may use: east (/k8s/clusters/east), west (/k8s/clusters/west)');
    const forBob = await get(`${gw.url}/k8s/clusters/north/api/v1/pods`, bob);
    assert.equal(forBob.status, 404);
    assert.equal(statusMessage(forBob), 'this gateway has no cluster named north; the clusters you may use: east (/k8s/clusters/east)');
    const noName = await get(`${gw.url}/k8s/clusters/`, bob);
    assert.equal(noName.status, 404);
    assert.match(statusMessage(noName), /^name a cluster: \/k8s\/clusters\/<name>; the clusters you may use: east/);
    const anonymous = await get(`${gw.url}/k8s/clusters/north/api/v1/pods`);
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(anonymous.body, /east|west/);
    assert.equal(east.requests.length + west.requests.length, before, 'nothing went upstream');
  });

  it("a project without the cluster's tag: 403 Status saying which tag opens it, and nothing reaches that cluster", async () => {
    const westBefore = west.requests.length;
    const res = await get(`${gw.url}/k8s/clusters/west/api/v1/namespaces/os-beta/pods`, bob);
    assert.equal(res.status, 403);
    assert.equal(
      statusMessage(res),
      'cluster west is open only to Keystone projects carrying one of the tags west, gpu; project beta has no such tag: ask a cloud administrator to tag the project (openstack project set --tag west beta), or use a cluster open to you: east',
    );
    assert.equal(west.requests.length, westBefore);
  });

  it('upgrades (exec, port-forward) go to the cluster named, with its credentials', async () => {
    const westBefore = west.requests.length;
    const conn = await RawConnection.open(gw.port);
    conn.write(requestHead('POST', '/k8s/clusters/west/api/v1/namespaces/os-alpha/pods/p/exec?command=sh', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
    await conn.until((t) => t.includes('\r\n\r\n'));
    assert.match(conn.text(), /^HTTP\/1\.1 101/);
    conn.write('hello');
    await conn.until((t) => t.includes('echo:hello'));
    conn.destroy();
    assert.equal(west.requests.length, westBefore + 1);
    assert.equal(west.last().url, '/api/v1/namespaces/os-alpha/pods/p/exec?command=sh');
    assert.deepEqual(authorizationOf(west.last()), ['Bearer gateway-sa-token-west']);
  });

  it("audit records and metrics carry the cluster's configured name (never a name a client made up)", async () => {
    await get(`${gw.url}/k8s/clusters/west/api/v1/namespaces/os-alpha/configmaps`, alice);
    const record = await gw.audit.waitFor((r) => r.path === '/k8s/clusters/west/api/v1/namespaces/os-alpha/configmaps');
    assert.equal(record.cluster, 'west');
    assert.equal(record.namespace, 'os-alpha');
    await get(`${gw.url}/k8s/clusters/made-up-name/api`, alice);
    const unknown = await gw.audit.waitFor((r) => r.path === '/k8s/clusters/made-up-name/api');
    assert.equal(unknown.cluster, undefined);
    assert.equal(unknown.status, 404);
    const text = (await gw.gateway.metrics.exposition()).body;
    assert.ok(sample(text, 'zun_gateway_cluster_requests_total', { coe: 'k8s', cluster: 'west', code: '200' }) >= 1);
    assert.ok(sample(text, 'zun_gateway_cluster_upstream_latency_seconds_count', { coe: 'k8s', cluster: 'east' }) >= 1);
    assert.doesNotMatch(text, /made-up-name/);
  });

  it('/whoami lists the clusters the caller may use with their server URLs', async () => {
    const forAlice = (await get(`${gw.url}/whoami`, alice)).json() as { coes: { k8s: { clusters: unknown } } };
    assert.deepEqual(forAlice.coes.k8s.clusters, [
      { name: 'east', server: `http://127.0.0.1:${gw.port}/k8s/clusters/east` },
      { name: 'west', server: `http://127.0.0.1:${gw.port}/k8s/clusters/west` },
    ]);
    const forBob = (await get(`${gw.url}/whoami`, bob)).json() as { coes: { k8s: { clusters: unknown } } };
    assert.deepEqual(forBob.coes.k8s.clusters, [{ name: 'east', server: `http://127.0.0.1:${gw.port}/k8s/clusters/east` }]);
  });

  it("/readyz reports each cluster's apiserver; one down makes the k8s check fail naming it, without blocking readiness", async () => {
    const healthy = (await get(`${gw.url}/readyz`)).json() as { checks: { k8s: { ok: boolean; upstreams: Record<string, { ok: boolean }> } } };
    assert.equal(healthy.checks.k8s.ok, true);
    assert.deepEqual(Object.keys(healthy.checks.k8s.upstreams), ['east', 'west']);
    west.healthzStatus = 500;
    try {
      const res = await get(`${gw.url}/readyz`);
      assert.equal(res.status, 200, 'an apiserver that is down is down for every replica');
      const body = res.json() as { checks: { k8s: { ok: boolean; detail: string; upstreams: Record<string, { ok: boolean; detail: string }> } } };
      assert.equal(body.checks.k8s.ok, false);
      assert.equal(body.checks.k8s.detail, 'cluster west: apiserver answered HTTP 500');
      assert.equal(body.checks.k8s.upstreams.east?.ok, true);
      assert.equal(body.checks.k8s.upstreams.west?.ok, false);
    } finally {
      west.healthzStatus = 200;
    }
  });

  it('an API path without the prefix is told both forms of it: /k8s and /k8s/clusters/<name> (kubectl get --raw)', async () => {
    const res = await get(`${gw.url}/api/v1/namespaces`, alice);
    assert.equal(res.status, 404);
    assert.match(res.body, /kubectl get --raw \/k8s\/clusters\/<name>\/api\/\.\.\./);
    const clustersAtRoot = await get(`${gw.url}/clusters/west/api`, alice);
    assert.equal(clustersAtRoot.status, 404);
    assert.match(clustersAtRoot.body, /must end in \/k8s, or in \/k8s\/clusters\/<name>/);
  });
});
