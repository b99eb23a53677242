import assert from 'node:assert/strict';
import http from 'node:http';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startDockerTestGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  status: number;
  body: string;
  ms: number;
}

/** A request that resolves with its answer, or with status 0 when nothing came within `waitMs` (then it is aborted). */
function send(url: string, options: { method?: string; headers: http.OutgoingHttpHeaders; body?: string; waitMs: number }): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - started }));
    });
    req.on('error', (err) => (Date.now() - started >= options.waitMs ? undefined : reject(err)));
    setTimeout(() => {
      req.destroy();
      resolve({ status: 0, body: '', ms: Date.now() - started });
    }, options.waitMs).unref();
    req.end(options.body);
  });
}

describe('response-head timeout for ordinary requests (an upstream that accepts and never answers)', function () {
  this.timeout(15_000);
  let keystone: KeystoneDouble;

  before(async () => {
    keystone = await KeystoneDouble.withAlice();
  });
  after(() => keystone.stop());

  describe('/k8s', () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    const alice = { 'x-auth-token': 'alice-token' };

    before(async () => {
      upstream = await new RecordingUpstream().start();
      gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, k8sYaml: '  responseHeaderTimeoutSeconds: 0.5' });
    });
    after(async () => {
      await gw.stop();
      await upstream.stop();
    });

    it('answers 504 in the Kubernetes dialect once the limit passes, and closes the upstream request', async () => {
      const r = await send(`${gw.url}/k8s/hang`, { headers: alice, waitMs: 5000 });
      assert.equal(r.status, 504);
      assert.ok(r.ms >= 450 && r.ms < 3000, `answered after ${r.ms} ms`);
      const status = JSON.parse(r.body) as { kind: string; code: number; message: string };
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 504);
      assert.match(status.message, /did not answer within 0\.5 s/);
      const rec = upstream.requests.find((q) => q.url === '/hang');
      await sleep(200);
      assert.ok(rec?.closedEarlyAt !== undefined, 'the upstream request was closed');
    });

    it('never cuts a watch short, however long its first byte takes', async () => {
      const r = await send(`${gw.url}/k8s/hang?watch=1`, { headers: alice, waitMs: 1500 });
      assert.equal(r.status, 0, `the watch was answered: ${r.status} ${r.body}`);
    });

    it('does not time an upload still under way', async () => {
      // The body arrives slowly (chunked, longer than the limit); the upstream answers once it has all of it.
      const started = Date.now();
      const answer = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${gw.url}/k8s/api/v1/namespaces/x/configmaps`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.write('{"kind":');
        setTimeout(() => req.write('"ConfigMap",'), 400);
        setTimeout(() => req.end('"apiVersion":"v1"}'), 900);
      });
      assert.equal(answer, 200);
      assert.ok(Date.now() - started >= 850);
    });

    it('leaves answering requests alone', async () => {
      const r = await send(`${gw.url}/k8s/slow?ms=300`, { headers: alice, waitMs: 5000 });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow-done');
    });

    it('stops timing once the head has come: a body that takes longer than the limit is relayed whole', async () => {
      const r = await send(`${gw.url}/k8s/slow-body?ms=2000`, { headers: alice, waitMs: 5000 });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow-body-done');
      assert.ok(r.ms >= 1950, `answered after ${r.ms} ms`);
    });

    it('times each request from its own start: one sent while another waits gets its full limit', async () => {
      const first = send(`${gw.url}/k8s/hang`, { headers: alice, waitMs: 5000 });
      await sleep(300);
      const second = send(`${gw.url}/k8s/hang`, { headers: alice, waitMs: 5000 });
      const [a, b] = await Promise.all([first, second]);
      assert.deepEqual([a.status, b.status], [504, 504]);
      assert.ok(b.ms >= 450, `the second answered after ${b.ms} ms`);
    });
  });

  describe('/docker', () => {
    let engine: FakeDockerEngine;
    let gateway: Awaited<ReturnType<typeof startDockerTestGateway>>;
    let base: string;
    const alice = { 'x-auth-token': 'alice-token' };

    before(async () => {
      engine = await new FakeDockerEngine().start();
      engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
      engine.neverAnswer = (path) => /^\/containers\/[^/]+\/(wait|stop|top)$/.test(path);
      gateway = await startDockerTestGateway(keystone.url, engine.socketPath, 'responseHeaderTimeoutSeconds: 0.5');
      base = gateway.base;
    });
    after(async () => {
      await gateway.stop();
      await engine.stop();
    });

    it("answers 504 in Docker's dialect once the limit passes, and closes the engine request", async () => {
      const r = await send(`${base}/containers/alice-web/top`, { headers: alice, waitMs: 5000 });
      assert.equal(r.status, 504);
      assert.match((JSON.parse(r.body) as { message: string }).message, /did not answer within 0\.5 s/);
      await sleep(200);
      assert.ok(engine.unansweredClosedAt.has('/v1.41/containers/a1b2c3d4e5f6/top'), 'the engine request was closed');
    });

    it('never cuts `docker wait` short (long-lived)', async () => {
      const r = await send(`${base}/containers/alice-web/wait`, { method: 'POST', headers: alice, waitMs: 1500 });
      assert.equal(r.status, 0, `wait was answered: ${r.status} ${r.body}`);
    });

    it('gives `docker stop -t N` its grace period plus a minute', async () => {
      const r = await send(`${base}/containers/alice-web/stop?t=5`, { method: 'POST', headers: alice, waitMs: 1500 });
      assert.equal(r.status, 0, `stop was answered: ${r.status} ${r.body}`);
      const quick = await send(`${base}/containers/alice-web/stop`, { method: 'POST', headers: alice, waitMs: 5000 });
      assert.equal(quick.status, 504, 'without t, the usual limit applies');
    });
  });
});
