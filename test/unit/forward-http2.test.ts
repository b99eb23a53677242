import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { forwardOverHttp2 } from '../../src/proxy/forward-http2.js';
import type { Http2Sessions } from '../../src/proxy/http2-sessions.js';

/**
 * An HTTP/2 client stream as Node delivers it when a response's HEADERS and first DATA are read together (seen with
 * the real apiserver under load): Node emits 'response' on the next tick, but the body chunk is pushed at once.
 */
class HeadAfterDataStream extends Readable {
  rstCode = 0;
  override _read(): void {}
  close(): void {
    this.destroy();
  }
  deliver(): void {
    this.push('{"type":"ADDED"}\n');
    process.nextTick(() => {
      this.emit('response', { ':status': 200, 'content-type': 'application/json' });
      this.push(null);
    });
  }
}

describe('forwardOverHttp2: a response head that Node emits after the first body chunk', () => {
  it('still goes to the client first, with the body after it, and nothing throws', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.prependListener('uncaughtException', onUncaught);
    const server = http.createServer((req, res) => {
      const stream = new HeadAfterDataStream();
      const sessions = { request: () => stream } as unknown as Http2Sessions;
      forwardOverHttp2(req, res, sessions, { fullPath: '/watch', headers: [] }, () => undefined);
      // Once the stream flows (its reader attached, a tick on), the head and the chunk arrive together.
      setImmediate(() => stream.deliver());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const got = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
        http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/watch`, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
          res.on('error', reject);
        }).on('error', reject);
      });
      assert.deepEqual(uncaught, []);
      assert.deepEqual(got, { status: 200, type: 'application/json', body: '{"type":"ADDED"}\n' });
    } finally {
      process.off('uncaughtException', onUncaught);
      server.close();
    }
  });
});
