import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

/**
 * undici's own clock (its body and header timeouts run on it, not on Node's timers): `tick` moves it on at once. The
 * gateway in this process forwards with the same undici, so a stream silent for "400 s" is one tick away.
 */
const undiciClock = createRequire(import.meta.url)('undici/lib/util/timers.js') as { tick(ms: number): void };

/**
 * A response that has started is never cut by a timeout (invariants.md 11): an apiserver or engine can be silent for
 * minutes inside a body (`kubectl logs -f` of a quiet pod through an ordinary GET, a slow LIST, `docker wait`), and
 * undici's default body timeout is 300 s.
 */
describe('a response silent for longer than any default timeout is relayed whole', () => {
  let keystone: KeystoneDouble;
  let gw: TestGateway;
  let upstream: http.Server;
  let finish: (() => void) | undefined;

  before(async () => {
    keystone = await KeystoneDouble.withAlice();
    // Sends its head and a first chunk at once, the rest only when the test says.
    upstream = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first,');
      finish = () => res.end('second');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
  });

  after(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
    await keystone.stop();
  });

  it('an ordinary GET whose body pauses for 400 s of undici time', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(`${gw.url}/k8s/api/v1/namespaces/os-alpha/pods/p/log`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString('utf8');
            if (text === 'first,') {
              // The body has begun and the upstream is silent: 400 s pass on undici's clock, in steps it checks.
              for (let s = 0; s < 8; s += 1) undiciClock.tick(50_000);
              setImmediate(() => finish?.());
            }
          });
          res.on('end', () => resolve(text));
          res.on('error', reject);
          res.on('aborted', () => reject(new Error(`cut after ${JSON.stringify(text)}`)));
        })
        .on('error', reject);
    });
    assert.equal(body, 'first,second');
  });
});
