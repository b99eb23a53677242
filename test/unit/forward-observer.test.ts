import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { forwardRequest, type ResponseObserver } from '../../src/proxy/forward.js';
import { Upstream } from '../../src/proxy/upstream.js';

/** A promise and its resolve, for steps a test releases itself (no clocks). */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** An observer that records what it saw and completes when the test says. */
class Recorder implements ResponseObserver {
  status = 0;
  readonly seen: string[] = [];
  completed = false;
  readonly release = deferred<Buffer | undefined>();
  readonly completing = deferred<void>();
  head(status: number): void {
    this.status = status;
  }
  data(chunk: Buffer): void {
    this.seen.push(chunk.toString());
  }
  complete(): Promise<Buffer | undefined> {
    this.completed = true;
    this.completing.resolve();
    return this.release.promise;
  }
}

describe('forwardRequest with a response observer (a pull whose outcome must be acted on before the client goes on)', () => {
  let upstreamServer: http.Server;
  let gateway: http.Server;
  let upstream: Upstream;
  let observer: Recorder;
  /** The upstream's handler for the current test. */
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;
  const upstreamClosed: Array<() => void> = [];

  before(async () => {
    upstreamServer = http.createServer((req, res) => {
      res.on('close', () => upstreamClosed.shift()?.());
      answer(req, res);
    });
    await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
    upstream = new Upstream(`http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`);
    gateway = http.createServer((req, res) => {
      forwardRequest(req, res, { upstream, path: req.url ?? '/', headers: ['Host', 'upstream'], onError: () => res.destroy(), observer });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  });

  after(() => {
    upstream.close();
    for (const s of [gateway, upstreamServer]) {
      s.closeAllConnections();
      s.close();
    }
  });

  beforeEach(() => {
    observer = new Recorder();
  });

  const get = (onData: (text: string) => void): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${(gateway.address() as AddressInfo).port}/pull`, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
            onData(body);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });

  it('shows each chunk as it is relayed, holds the end until complete resolves, and relays its last line on a stream', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"a"}\r\n');
      res.end('{"status":"b"}\r\n');
    };
    let ended = false;
    const firstSeen = deferred<void>();
    const response = get((text) => text.includes('"b"') && firstSeen.resolve()).then((r) => {
      ended = true;
      return r;
    });
    await firstSeen.promise;
    await observer.completing.promise;
    assert.equal(ended, false, 'the client saw the end before complete resolved');
    assert.deepEqual(observer.seen.join(''), '{"status":"a"}\r\n{"status":"b"}\r\n');
    assert.equal(observer.status, 200);
    observer.release.resolve(Buffer.from('{"error":"x"}\r\n'));
    const { body } = await response;
    assert.equal(body, '{"status":"a"}\r\n{"status":"b"}\r\n{"error":"x"}\r\n');
  });

  it('never appends to a response with Content-Length (its length would be wrong)', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
    };
    const response = get(() => undefined);
    await observer.completing.promise;
    observer.release.resolve(Buffer.from('more'));
    assert.equal((await response).body, '{}');
  });

  it('a client that leaves mid-answer: complete never runs, and the upstream request is torn down', async () => {
    const upstreamGone = deferred<void>();
    upstreamClosed.push(upstreamGone.resolve);
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"Pulling"}\r\n');
    };
    const req = http.get(`http://127.0.0.1:${(gateway.address() as AddressInfo).port}/pull`);
    req.on('error', () => undefined);
    await new Promise<void>((r) => req.on('response', (res) => res.once('data', () => r())));
    req.destroy();
    await upstreamGone.promise;
    assert.equal(observer.completed, false);
  });
});
