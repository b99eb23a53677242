import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { engineJson } from '../../src/docker/engine.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { cutUpload } from '../helpers/cut-upload.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startDockerTestGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client that sends a request head promising 1 MiB, `sent` bytes of the body, and vanishes after `waitMs`. */
function cut(port: number, head: string, sent: Buffer, waitMs: number): Promise<void> {
  return cutUpload((connected) => net.connect(port, '127.0.0.1', connected), `${head}Host: gateway\r\nX-Auth-Token: alice-token\r\n`, sent, waitMs);
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(20);
  return check();
}

describe('clients that give up mid-upload: the upstream request is cut off too', function () {
  this.timeout(15_000);
  let keystone: KeystoneDouble;

  before(async () => {
    keystone = await KeystoneDouble.withAlice();
  });
  after(() => keystone.stop());

  it('/k8s: a POST whose body stops halfway is closed upstream at once', async () => {
    const upstream = await new RecordingUpstream().start();
    const gw: TestGateway = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
    try {
      for (const waitMs of [0, 100]) {
        const before = upstream.requests.length;
        await cut(gw.port, 'POST /k8s/upload HTTP/1.1\r\nContent-Type: application/json\r\n', Buffer.alloc(64 * 1024, 'x'), waitMs);
        assert.ok(await until(() => upstream.requests.length > before && upstream.last().closedEarlyAt !== undefined, 2000), `cut after ${waitMs} ms: the upstream request stayed open`);
        assert.ok(upstream.last().body.length < 1024 * 1024);
      }
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });

  it('/docker: an archive upload (docker cp) whose body stops halfway is closed at the engine at once', async () => {
    const engine = await new FakeDockerEngine().start();
    engine.containers.push({ id: 'c'.repeat(64), name: 'mine', labels: { [OWNER_LABEL]: 'p-alpha' } });
    const gw = await startDockerTestGateway(keystone.url, engine.socketPath);
    try {
      for (const waitMs of [0, 100, 300]) {
        const before = engine.bodiesCutOff;
        await cut(gw.port, `PUT /docker/v1.41/containers/mine/archive?path=/tmp HTTP/1.1\r\nContent-Type: application/x-tar\r\n`, Buffer.alloc(64 * 1024), waitMs);
        assert.ok(await until(() => engine.bodiesCutOff > before, 2000), `cut after ${waitMs} ms: the engine's request stayed open`);
      }
    } finally {
      await gw.stop();
      await engine.stop();
    }
  });
});

describe("the gateway's own upstream calls do not keep connections open for good", () => {
  it('a burst of 40 concurrent lookups (Docker ownership checks) leaves no connection open once idle', async () => {
    const server = http.createServer((_req, res) => setTimeout(() => res.end('{}'), 20));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const open = (): Promise<number> => new Promise((r, j) => server.getConnections((err, n) => (err ? j(err) : r(n))));
    const upstream = new Upstream(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, undefined, undefined, { idleConnectionMs: 300 });
    try {
      await Promise.all(Array.from({ length: 40 }, () => engineJson(upstream, 'GET', '/containers/x/json')));
      assert.ok((await open()) >= 20, 'the burst used many connections at once');
      let n = await open();
      for (let i = 0; i < 40 && n > 0; i += 1) {
        await sleep(50);
        n = await open();
      }
      assert.equal(n, 0, `${n} idle connections still open 2 s after the burst`);
      // And the next lookup simply connects again.
      assert.equal((await engineJson(upstream, 'GET', '/_ping')).status, 200);
    } finally {
      upstream.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
