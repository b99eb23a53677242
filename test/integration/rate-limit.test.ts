import assert from 'node:assert/strict';
import http from 'node:http';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { Changes, ManualClock } from '../helpers/changes.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startDockerTestGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';


interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, token: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'x-auth-token': token }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('per-project rate limits (token bucket per project and COE), on a clock the test moves', () => {
  let keystone: KeystoneDouble;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    for (const [token, user, id, name] of [
      ['alice-token', 'alice', 'p-alpha', 'alpha'],
      ['bob-token', 'bob', 'p-beta', 'beta'],
      ['carol-token', 'carol', 'p-gamma', 'gamma'],
      ['dave-token', 'dave', 'p-delta', 'delta'],
    ] as const) {
      keystone.register(token, { user, project: { id, name }, roles: ['member'] });
    }
  });
  after(() => keystone.stop());

  describe('/k8s', () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    // Token caches and buckets share it; the cached tokens live 5 minutes, far more than these tests move it.
    const clock = new ManualClock();

    before(async () => {
      upstream = await new RecordingUpstream().start();
      gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, k8sYaml: '  rateLimit: {requestsPerSecond: 5, burst: 5}', timing: { now: clock.now } });
    });
    after(async () => {
      await gw.stop();
      await upstream.stop();
    });

    it('answers requests beyond the burst with 429, Retry-After and a Kubernetes Status, and forwards none of them', async () => {
      const before = upstream.requests.length;
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => get(`${gw.url}/k8s/api/v1/namespaces/a/configmaps/c${i}`, 'alice-token')));
      const refused = answers.filter((a) => a.status === 429);
      const served = answers.filter((a) => a.status === 200).length;
      assert.equal(served, 5, 'the burst, no more: no time passed');
      assert.equal(refused.length, 3);
      for (const r of refused) {
        assert.equal(r.headers['retry-after'], '1');
        const status = JSON.parse(r.body) as { kind: string; reason: string; code: number; message: string };
        assert.equal(status.kind, 'Status');
        assert.equal(status.reason, 'TooManyRequests');
        assert.equal(status.code, 429);
        assert.match(status.message, /project alpha .* 5 per second .* retry after 1 s/);
      }
      assert.equal(upstream.requests.length - before, served, 'refused requests never reach the apiserver');
      assert.ok(gw.audit.records.some((a) => a.status === 429 && a.project?.id === 'p-alpha'), 'refusals are audited');
      const metrics = await gw.gateway.metrics.registry.metrics();
      assert.match(metrics, new RegExp(`^zun_gateway_rate_limited_total\\{coe="k8s"\\} ${refused.length}$`, 'm'));
    });

    it('one noisy project cannot starve another: bob is served in full while alice floods', async () => {
      clock.advance(10_000); // every bucket full again
      const bob: number[] = [];
      let aliceServed = 0;
      let aliceRefused = 0;
      // Two seconds, a quarter at a time: alice sends twenty at once each time, bob one.
      for (let i = 0; i < 8; i += 1) {
        const [alice, own] = await Promise.all([
          Promise.all(Array.from({ length: 20 }, () => get(`${gw.url}/k8s/api/v1/namespaces/a/configmaps/x`, 'alice-token'))),
          get(`${gw.url}/k8s/api/v1/namespaces/b/configmaps/x`, 'bob-token'),
        ]);
        aliceServed += alice.filter((a) => a.status === 200).length;
        aliceRefused += alice.filter((a) => a.status === 429).length;
        bob.push(own.status);
        clock.advance(250);
      }
      // Her burst of 5, then 5 a second for the 1.75 s between the first round and the last.
      assert.ok(aliceServed <= 5 + 9, `alice was held to her limit (${aliceServed} served, ${aliceRefused} refused)`);
      assert.deepEqual(bob, Array(8).fill(200), 'every one of bob\'s requests was served');
    });

    it('a watch costs one request at its start, however long it runs, and is never cut', async () => {
      const events: string[] = [];
      const streamed = new Changes();
      const watches = await Promise.all(
        [1, 2, 3, 4, 5].map(
          (i) =>
            new Promise<http.ClientRequest>((resolve, reject) => {
              const req = http.get(`${gw.url}/k8s/watch?watch=1&w=${i}`, { headers: { 'x-auth-token': 'carol-token' }, agent: false }, (res) => {
                assert.equal(res.statusCode, 200);
                res.on('data', (c: Buffer) => {
                  events.push(c.toString('utf8'));
                  streamed.notify();
                });
                resolve(req);
              });
              req.on('error', reject);
            }),
        ),
      );
      // The five watches spent the bucket; the next requests wait for a refill ...
      const next = await Promise.all([1, 2, 3].map(() => get(`${gw.url}/k8s/api/v1/namespaces/c/configmaps/x`, 'carol-token')));
      assert.deepEqual(next.map((a) => a.status), [429, 429, 429], 'the watches took from the bucket');
      // ... which comes although the watches keep streaming: their events are not requests.
      const seenBefore = events.length;
      await streamed.until(() => events.length > seenBefore + 20);
      clock.advance(200);
      assert.equal((await get(`${gw.url}/k8s/api/v1/namespaces/c/configmaps/x`, 'carol-token')).status, 200);
      for (const w of watches) w.destroy();
    });

    it('an upgrade (exec) beyond the limit gets 429 on its socket, with Retry-After', async () => {
      // Spend dave's bucket until a request is refused, then ask for an exec at once.
      for (let i = 0; i < 20 && (await get(`${gw.url}/k8s/api/v1/namespaces/d/configmaps/x`, 'dave-token')).status !== 429; i += 1);
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/api/v1/namespaces/d/pods/p/exec?command=sh', [
        ['X-Auth-Token', 'dave-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1'], ['X-Stream-Protocol-Version', 'v4.channel.k8s.io'],
      ]));
      const text = await c.untilEnded();
      assert.match(text, /^HTTP\/1\.1 429 /);
      assert.match(text, /\r\nRetry-After: 1\r\n/);
      assert.match(text, /"reason":"TooManyRequests"/);
    });
  });

  describe('/docker', () => {
    let engine: FakeDockerEngine;
    let gateway: Awaited<ReturnType<typeof startDockerTestGateway>>;
    let base: string;
    const clock = new ManualClock();

    before(async () => {
      engine = await new FakeDockerEngine().start();
      engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
      gateway = await startDockerTestGateway(keystone.url, engine.socketPath, 'rateLimit: {requestsPerSecond: 2}', { now: clock.now });
      base = gateway.base;
    });
    after(async () => {
      await gateway.stop();
      await engine.stop();
    });

    it("answers 429 in Docker's dialect with Retry-After beyond the burst (which defaults to the rate), per project", async () => {
      const alice = await Promise.all([1, 2, 3].map(() => get(`${base}/containers/json`, 'alice-token')));
      assert.deepEqual(alice.map((a) => a.status).sort(), [200, 200, 429]);
      const refused = alice.find((a) => a.status === 429) as Answer;
      assert.equal(refused.headers['retry-after'], '1');
      assert.match((JSON.parse(refused.body) as { message: string }).message, /too many requests from project alpha to \/docker/);
      assert.equal((await get(`${base}/containers/json`, 'bob-token')).status, 200, "bob's bucket is his own");
      clock.advance(500);
      assert.equal((await get(`${base}/containers/json`, 'alice-token')).status, 200, 'refilled at 2 per second');
    });
  });
});
