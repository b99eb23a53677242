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

/**
 * A client that sends a request head promising 1 MiB, `sent` bytes of the body, and vanishes once `leave` has
 * happened (the upstream has the request's head, or some of its body).
 */
function cut(port: number, head: string, sent: Buffer, leave: Promise<unknown>): Promise<void> {
  return cutUpload((connected) => net.connect(port, '127.0.0.1', connected), `${head}Host: gateway\r\nX-Auth-Token: alice-token\r\n`, sent, leave);
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
      // The client leaves once the upstream has the request's head, and once it has some of its body.
      for (const [n, when] of [[1, 'head'], [2, 'body']] as const) {
        const path = `/upload?n=${n}`;
        const arrived = upstream.arrival((url) => url === path);
        const leave = when === 'head' ? arrived : arrived.then((rec) => upstream.changes.until(() => (rec.received ?? 0) > 0));
        await cut(gw.port, `POST /k8s${path} HTTP/1.1\r\nContent-Type: application/json\r\n`, Buffer.alloc(64 * 1024, 'x'), leave);
        const rec = await arrived;
        // Nothing else would end it: the upstream answers only once the whole body has come.
        await upstream.closed(rec);
        assert.ok(rec.closedEarlyAt !== undefined, `cut after its ${when}: the upstream request ended as if whole`);
        assert.ok((rec.received ?? 0) < 1024 * 1024);
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
      const archive = `/containers/${'c'.repeat(64)}/archive`;
      for (const when of ['head', 'body'] as const) {
        const before = engine.bodiesCutOff;
        const heads = engine.arrived.length;
        const bytes = engine.bodyBytes;
        const arrived = engine.changes.until(() => engine.arrived.slice(heads).includes(archive));
        const leave = when === 'head' ? arrived : arrived.then(() => engine.changes.until(() => engine.bodyBytes > bytes));
        await cut(gw.port, `PUT /docker/v1.41/containers/mine/archive?path=/tmp HTTP/1.1\r\nContent-Type: application/x-tar\r\n`, Buffer.alloc(64 * 1024), leave);
        // Nothing else would end it: the engine answers only once the whole body has come.
        await engine.changes.until(() => engine.bodiesCutOff > before);
      }
    } finally {
      await gw.stop();
      await engine.stop();
    }
  });
});

describe("the gateway's own upstream calls do not keep connections open for good", () => {
  it('a burst of 40 concurrent lookups (Docker ownership checks) leaves no connection open once idle', async () => {
    // The engine answers only once all forty are in: they are at it at once, each on a connection of its own.
    const waiting: http.ServerResponse[] = [];
    let burstAnswered = false;
    const sockets: net.Socket[] = [];
    const server = http.createServer((_req, res) => {
      if (burstAnswered) return void res.end('{}');
      waiting.push(res);
      if (waiting.length < 40) return;
      burstAnswered = true;
      for (const r of waiting) r.end('{}');
    });
    // The server keeps idle connections for ever: only the gateway's side can close them.
    server.keepAliveTimeout = 0;
    server.on('connection', (socket: net.Socket) => sockets.push(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const upstream = new Upstream(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, undefined, undefined, { idleConnectionMs: 300 });
    try {
      await Promise.all(Array.from({ length: 40 }, () => engineJson(upstream, 'GET', '/containers/x/json')));
      assert.equal(sockets.length, 40, 'the burst used a connection per lookup');
      // Each is closed once idle; a pool that kept them would leave this waiting for mocha's timeout.
      await Promise.all(sockets.map((s) => new Promise((resolve) => (s.destroyed ? resolve(undefined) : s.once('close', resolve)))));
      // And the next lookup simply connects again.
      assert.equal((await engineJson(upstream, 'GET', '/_ping')).status, 200);
    } finally {
      upstream.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
