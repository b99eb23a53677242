import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { RESPONSE_BUFFER_BYTES, forwardRequest } from '../../src/proxy/forward.js';
import type { Upstream } from '../../src/proxy/upstream.js';

/**
 * Back-pressure from a client to the upstream pool: the upstream is paused only once RESPONSE_BUFFER_BYTES wait for
 * the client. Pausing undici at the socket's 16 KB mark paused it for nearly every chunk of a large body (an engine
 * sends about 22 KB at a time), and each resume re-read what its socket held: a 100 MB `docker export` took 40 s of
 * the gateway's CPU instead of 0.2 s.
 */
describe('forwardRequest: back-pressure towards the upstream pool', () => {
  let server: http.Server;
  let dispatched: (h: Dispatcher.DispatchHandler) => void;
  const handler = new Promise<Dispatcher.DispatchHandler>((resolve) => (dispatched = resolve));
  const calls = { pause: 0, resume: 0 };
  let resumed: () => void;
  const firstResume = new Promise<void>((resolve) => (resumed = resolve));
  const controller = {
    pause: () => (calls.pause += 1),
    resume: () => {
      calls.resume += 1;
      resumed();
    },
    abort: () => undefined,
    paused: false,
    aborted: false,
    reason: null,
  } as unknown as Dispatcher.DispatchController;
  const upstream = {
    origin: 'http://upstream',
    basePath: '',
    http2: undefined,
    responseHeaderTimeoutMs: 0,
    pool: {
      dispatch(_options: unknown, h: Dispatcher.DispatchHandler) {
        dispatched(h);
        return true;
      },
    },
  } as unknown as Upstream;

  before(async () => {
    server = http.createServer((req, res) => {
      forwardRequest(req, res, { upstream, path: '/export', headers: ['Host', 'upstream'], onError: () => undefined });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('relays chunks larger than the socket mark without pausing until RESPONSE_BUFFER_BYTES wait, then resumes once they are out', async () => {
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.write('GET /export HTTP/1.1\r\nHost: gw\r\n\r\n');
    let received = 0;
    let allReceived: () => void;
    const total = (Math.floor((RESPONSE_BUFFER_BYTES - 1) / (22 * 1024)) + 3) * 22 * 1024;
    const everything = new Promise<void>((resolve) => (allReceived = resolve));
    // The answer's head and chunked framing come on top of the body's bytes.
    client.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= total) allReceived();
    });
    const h = (await handler) as Required<Dispatcher.DispatchHandler>;
    h.onRequestStart(controller, {});
    h.onResponseStart(controller, 200, { 'content-type': 'application/x-tar' }, 'OK');
    const chunk = Buffer.alloc(22 * 1024, 1);
    const below = Math.floor((RESPONSE_BUFFER_BYTES - 1) / chunk.length);
    for (let i = 0; i < below; i += 1) h.onResponseData(controller, chunk);
    assert.equal(calls.pause, 0, `paused before ${RESPONSE_BUFFER_BYTES} bytes were waiting`);
    for (let i = 0; i < 3; i += 1) h.onResponseData(controller, chunk);
    assert.equal(calls.pause, 1, 'paused once, not per chunk');
    // The client reads all the while: once what waited for it is out, the upstream is resumed, once.
    await firstResume;
    assert.equal(calls.resume, 1);
    h.onResponseEnd(controller, {});
    await everything;
    client.destroy();
  });
});
