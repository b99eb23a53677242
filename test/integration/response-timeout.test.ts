import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startDockerTestGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

/**
 * undici's own clock: the response-head timeout runs on it (a "fast timer", checked every half second of real time).
 * `tick` moves it on at once; the gateway in this process forwards with the same undici.
 */
const undiciClock = createRequire(import.meta.url)('undici/lib/util/timers.js') as { tick(ms: number): void };

/** `ms` pass on undici's clock. The first tick starts the timers made since its last check (it times them from then). */
function undiciTime(ms: number): void {
  undiciClock.tick(1);
  undiciClock.tick(ms);
}

interface Outcome {
  status: number;
  body: string;
}

/**
 * A request through the gateway: its answer when it comes; `head` when its head has come, `answered` whether it has.
 * With `open`, the body is left for the test to write and end.
 */
function send(url: string, options: { method?: string; headers: http.OutgoingHttpHeaders; body?: string; open?: boolean }) {
  let headArrived = false;
  let req!: http.ClientRequest;
  let headCame!: () => void;
  const head = new Promise<void>((resolve) => (headCame = resolve));
  const answer = new Promise<Outcome>((resolve, reject) => {
    req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      headArrived = true;
      headCame();
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    if (options.open !== true) req.end(options.body);
  });
  answer.catch(() => undefined);
  return { answer, req, head, answered: () => headArrived };
}

/**
 * The gateway writes a timeout's answer in the same tick for every request whose limit passed: once one such answer
 * has arrived and been read, an answer due at the same moment would have too. `still` must be unanswered then.
 */
async function unansweredAfter(due: ReturnType<typeof send>, still: ReturnType<typeof send>, what: string): Promise<Outcome> {
  const r = await due.answer;
  for (let i = 0; i < 2; i += 1) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(still.answered(), false, what);
  return r;
}

describe('response-head timeout for ordinary requests (an upstream that accepts and never answers), on undici\'s clock', () => {
  let keystone: KeystoneDouble;

  before(async () => {
    keystone = await KeystoneDouble.withAlice();
  });
  after(() => keystone.stop());

  describe('/k8s', () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    const alice = { 'x-auth-token': 'alice-token' };
    const url = (path: string): string => `${gw.url}/k8s${path}`;

    before(async () => {
      upstream = await new RecordingUpstream().start();
      gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, k8sYaml: '  responseHeaderTimeoutSeconds: 60' });
    });
    after(async () => {
      await gw.stop();
      await upstream.stop();
    });

    it('answers 504 in the Kubernetes dialect once the limit passes, and closes the upstream request', async () => {
      const hung = send(url('/hang?case=1'), { headers: alice });
      const rec = await upstream.arrival((u) => u === '/hang?case=1');
      undiciTime(60_000);
      const r = await hung.answer;
      assert.equal(r.status, 504);
      const status = JSON.parse(r.body) as { kind: string; code: number; message: string };
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 504);
      assert.match(status.message, /did not answer within 60 s/);
      await upstream.closed(rec);
      assert.ok(rec.closedEarlyAt !== undefined, 'the upstream request was closed');
    });

    it('never cuts a watch short, however long its first byte takes', async () => {
      const watch = send(url('/hang?watch=1&case=2'), { headers: alice });
      const ordinary = send(url('/hang?case=2'), { headers: alice });
      await upstream.arrival((u) => u === '/hang?watch=1&case=2');
      await upstream.arrival((u) => u === '/hang?case=2');
      undiciTime(120_000);
      assert.equal((await unansweredAfter(ordinary, watch, 'the watch was answered')).status, 504);
      watch.req.destroy();
    });

    it('does not time an upload still under way', async () => {
      // The body arrives slowly (chunked, longer than the limit); the upstream answers once it has all of it.
      const upload = send(url('/api/v1/namespaces/x/configmaps?case=3'), { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, open: true });
      upload.req.write('{"kind":');
      await upstream.arrival((u) => u.endsWith('case=3'));
      undiciTime(120_000);
      upload.req.write('"ConfigMap",');
      undiciTime(120_000);
      upload.req.end('"apiVersion":"v1"}');
      assert.equal((await upload.answer).status, 200);
    });

    it('leaves answering requests alone', async () => {
      const held = send(url('/held?case=4'), { headers: alice });
      await upstream.arrival((u) => u === '/held?case=4');
      undiciTime(30_000);
      upstream.release();
      assert.deepEqual(await held.answer, { status: 200, body: 'held-done' });
    });

    it('stops timing once the head has come: a body that takes longer than the limit is relayed whole', async () => {
      const slow = send(url('/held-body?case=5'), { headers: alice });
      await upstream.arrival((u) => u === '/held-body?case=5');
      await slow.head;
      undiciTime(120_000);
      upstream.release();
      assert.deepEqual(await slow.answer, { status: 200, body: 'held-body-done' });
    });

    it('times each request from its own start: one sent while another waits gets its full limit', async () => {
      const first = send(url('/hang?case=6a'), { headers: alice });
      await upstream.arrival((u) => u === '/hang?case=6a');
      undiciTime(40_000);
      const second = send(url('/hang?case=6b'), { headers: alice });
      await upstream.arrival((u) => u === '/hang?case=6b');
      undiciTime(25_000);
      assert.equal((await unansweredAfter(first, second, 'the second was timed from the first one\'s start')).status, 504);
      undiciTime(40_000);
      assert.equal((await second.answer).status, 504);
    });
  });

  describe('/docker', () => {
    let engine: FakeDockerEngine;
    let gateway: Awaited<ReturnType<typeof startDockerTestGateway>>;
    const alice = { 'x-auth-token': 'alice-token' };
    const arrived = (path: string): Promise<void> => engine.changes.until(() => engine.requests.some((r) => r.url === `/v1.41${path}`));

    before(async () => {
      engine = await new FakeDockerEngine().start();
      engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
      engine.neverAnswer = (path) => /^\/containers\/[^/]+\/(wait|stop|top)$/.test(path);
      gateway = await startDockerTestGateway(keystone.url, engine.socketPath, 'responseHeaderTimeoutSeconds: 10');
    });
    after(async () => {
      await gateway.stop();
      await engine.stop();
    });

    it("answers 504 in Docker's dialect once the limit passes, and closes the engine request", async () => {
      const top = send(`${gateway.base}/containers/alice-web/top`, { headers: alice });
      await arrived('/containers/a1b2c3d4e5f6/top');
      undiciTime(10_000);
      const r = await top.answer;
      assert.equal(r.status, 504);
      assert.match((JSON.parse(r.body) as { message: string }).message, /did not answer within 10 s/);
      await engine.changes.until(() => engine.unansweredClosedAt.has('/v1.41/containers/a1b2c3d4e5f6/top'));
    });

    it('never cuts `docker wait` short (long-lived)', async () => {
      const wait = send(`${gateway.base}/containers/alice-web/wait?condition=next-exit`, { method: 'POST', headers: alice });
      const top = send(`${gateway.base}/containers/alice-web/top?ps_args=aux`, { headers: alice });
      await arrived('/containers/a1b2c3d4e5f6/wait?condition=next-exit');
      await arrived('/containers/a1b2c3d4e5f6/top?ps_args=aux');
      undiciTime(120_000);
      assert.equal((await unansweredAfter(top, wait, 'wait was answered')).status, 504);
      wait.req.destroy();
    });

    it('gives `docker stop -t N` its grace period plus a minute; without t the usual limit applies', async () => {
      const patient = send(`${gateway.base}/containers/alice-web/stop?t=5`, { method: 'POST', headers: alice });
      const quick = send(`${gateway.base}/containers/alice-web/stop`, { method: 'POST', headers: alice });
      await arrived('/containers/a1b2c3d4e5f6/stop?t=5');
      await arrived('/containers/a1b2c3d4e5f6/stop');
      undiciTime(30_000);
      const r = await unansweredAfter(quick, patient, 'stop -t 5 was cut before 65 s');
      assert.match((JSON.parse(r.body) as { message: string }).message, /did not answer within 10 s/);
      undiciTime(40_000);
      assert.match((JSON.parse((await patient.answer).body) as { message: string }).message, /did not answer within 65 s/);
    });
  });
});
