import assert from 'node:assert/strict';
import net from 'node:net';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startDockerTestGateway, startTestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

/** Writes the requests in one go on one connection (HTTP/1.1 pipelining) and collects the answers' status codes. */
function pipelined(port: number, requests: readonly string[]): Promise<string[]> {
  const count = requests.length;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(requests.join('')));
    let text = '';
    const statuses = (): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1] as string);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (statuses().length === count) {
        socket.destroy();
        resolve(statuses());
      }
    });
    socket.on('error', reject);
    // A connection the gateway closes before every answer came shows which ones did.
    socket.on('close', () => resolve(statuses()));
  });
}

describe('requests that follow each other on one connection (keep-alive, pipelining) are each answered', () => {
  let keystone: KeystoneDouble;
  before(async () => {
    keystone = await KeystoneDouble.withAlice();
  });
  after(() => keystone.stop());

  // A request read before the previous answer is written out has no socket of its own yet (Node queues its
  // response): it must not be taken for a client that left. The docker CLI's HEAD then GET /_ping over TLS met this.
  it('/k8s: five pipelined GETs get five answers', async () => {
    const upstream = await new RecordingUpstream().start();
    const gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url });
    try {
      const answers = await pipelined(gw.port, Array(5).fill('GET /k8s/api HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: alice-token\r\n\r\n'));
      assert.deepEqual(answers, ['200', '200', '200', '200', '200']);
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });

  it('/docker: HEAD and GET /_ping pipelined, with the engine failing and answering', async () => {
    const engine = await new FakeDockerEngine().start();
    const gw = await startDockerTestGateway(keystone.url, engine.socketPath);
    try {
      const ping = (method: string): string => `${method} /docker/_ping HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: alice-token\r\n\r\n`;
      const pings = [ping('HEAD'), ping('GET'), ping('HEAD'), ping('GET')];
      assert.deepEqual(await pipelined(gw.port, pings), ['200', '200', '200', '200']);
      await engine.stop();
      assert.deepEqual(await pipelined(gw.port, pings), ['502', '502', '502', '502']);
    } finally {
      await gw.stop();
    }
  });
});
