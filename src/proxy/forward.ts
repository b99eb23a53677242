import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ByteCount } from './byte-count.js';
import type { GatewayError } from '../errors.js';
import { upstreamFailure } from './errors.js';
import { forwardOverHttp2 } from './forward-http2.js';
import { relayedHeaders } from './hop-by-hop.js';
import type { Upstream } from './upstream.js';

export interface ForwardOptions {
  readonly upstream: Upstream;
  /** Path and query as they go upstream (below the upstream's own base path). */
  readonly path: string;
  /** The complete outgoing header list, flat like rawHeaders, Host included. */
  readonly headers: string[];
  /** Called when the upstream fails before a response started; the caller answers in its dialect. */
  readonly onError: (err: GatewayError) => void;
  /** A body that replaces the client's (already read and checked); its length must be in `headers`. */
  readonly body?: Buffer;
  /** Called once with the upstream status when the response head is relayed. */
  readonly onResponse?: (status: number, contentType: string | undefined) => void;
  /** Counts the body bytes relayed each way. */
  readonly bytes?: ByteCount;
  /**
   * A watch, `logs -f`, `docker events` or `wait`: no response-head timeout applies, and when the upstream offers
   * HTTP/2 for them (Upstream.http2For) a body-less GET goes as a stream on a shared connection rather than a
   * connection of its own. Ordinary requests take HTTP/2 when it is offered for them.
   */
  readonly longLived?: boolean;
  /** Replaces the upstream's response-head timeout for this request (e.g. `docker stop -t 600` waits that long). */
  readonly responseHeaderTimeoutMs?: number;
  /**
   * Aborted: the upstream request is torn down and nothing more of it is relayed, the client's response left open for
   * the caller to end (a session whose token ended gets its last words, routes/pipeline.ts).
   */
  readonly signal?: AbortSignal;
  /** Sees the response as it is relayed, and may hold its end (ResponseObserver). */
  readonly observer?: ResponseObserver;
}

/**
 * Something that must learn what an upstream answered, without changing or buffering it: each chunk is shown as it is
 * relayed. Only when the upstream's body is complete, and before the client sees its end, `complete` runs, so what the
 * client does next (another request, on any replica) can rely on its outcome. A response that breaks off, or whose
 * client leaves, never completes.
 */
export interface ResponseObserver {
  head(status: number): void;
  data(chunk: Buffer): void;
  /**
   * Resolves with bytes to relay after the body (a last line of a streamed answer), or undefined; it must not reject.
   * Extra bytes are sent only on a response without Content-Length, whose length they cannot break.
   */
  complete(): Promise<Buffer | undefined>;
}

/** The client's body as undici pulls it (back-pressure kept), counted on the way. */
async function* counted(req: IncomingMessage, bytes: ByteCount): AsyncIterable<Buffer> {
  for await (const chunk of req) {
    bytes.in += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}

/**
 * The client's connection is closed (or the response was given up). Not `res.socket === null`: a request read while
 * the answer before it on the same connection is still being written has no socket on its response yet.
 */
function clientGone(req: IncomingMessage, res: ServerResponse): boolean {
  return res.destroyed || req.socket.destroyed;
}

/** How much of a response may wait for a slow client before the upstream is paused. */
export const RESPONSE_BUFFER_BYTES = 256 * 1024;

/** Whether the client sends a body: framed by Content-Length (non-zero) or Transfer-Encoding. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Forwards one HTTP request through the upstream's undici pool and streams both bodies: each chunk goes on as it
 * arrives, back-pressure pauses the upstream while the client is slow, nothing is buffered beyond what the sockets
 * hold, and no timeout applies (watches and `logs -f` run for as long as both ends want). When the client goes away
 * first, the upstream request is aborted at once (invariants.md 30). Body framing is undici's and Node's own: a
 * client's Transfer-Encoding never crosses.
 */
export function forwardRequest(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
  const { upstream } = options;
  // The client went away while it was being authenticated: nobody would read the answer, and no 'close' is left to
  // come that would end an upstream watch started now.
  if (clientGone(req, res)) return;
  const sessions = upstream.http2;
  // A response observer (docker pulls) is served by the pool's relay only.
  if (options.observer === undefined && sessions?.usable === true) {
    const longLived = options.longLived === true;
    const streamBody = options.body === undefined && hasBody(req);
    // Watches: a stream each instead of a TLS connection each (memory). Ordinary requests: the apiserver serves them
    // with less work on one connection than on a pool of them (docs/performance.md, step 13). A long-lived request
    // with a body (rare: none of kubectl's) keeps the HTTP/1.1 way.
    const h2 = longLived ? upstream.http2For.longLived && !streamBody && req.method === 'GET' : upstream.http2For.ordinary;
    if (h2) {
      forwardOverHttp2(
        req,
        res,
        sessions,
        {
          fullPath: upstream.basePath + options.path,
          headers: options.headers,
          ...(options.body !== undefined ? { body: options.body } : {}),
          streamBody,
          headersTimeoutMs: longLived || streamBody ? 0 : (options.responseHeaderTimeoutMs ?? upstream.responseHeaderTimeoutMs),
          ...(longLived ? {} : { responseBufferBytes: RESPONSE_BUFFER_BYTES }),
          ...(options.bytes !== undefined ? { bytes: options.bytes } : {}),
          ...(options.onResponse !== undefined ? { onResponse: options.onResponse } : {}),
          onError: options.onError,
          ...(options.signal !== undefined ? { signal: options.signal } : {}),
        },
        () => forwardOverPool(req, res, options),
      );
      return;
    }
  }
  forwardOverPool(req, res, options);
}

/** forwardRequest over the upstream's HTTP/1.1 pool. */
function forwardOverPool(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
  const { upstream, bytes, observer } = options;
  let controller: Dispatcher.DispatchController | undefined;
  let failed = false;
  let stopped = false;
  options.signal?.addEventListener('abort', () => {
    stopped = true;
    controller?.abort(new Error('ended by the gateway'));
  });
  const fail = (err: Error): void => {
    if (failed || stopped) return;
    failed = true;
    if (res.destroyed) return;
    if (res.headersSent) res.destroy();
    else options.onError(upstreamFailure(err, headersTimeout));
  };

  let body: Buffer | AsyncIterable<Buffer> | null = null;
  // The response-head timeout starts when undici starts sending: only fair when the body is already here.
  let streamedBody = false;
  if (options.body !== undefined) {
    body = options.body;
    if (bytes !== undefined) bytes.in += options.body.length;
  } else if (hasBody(req)) {
    body = bytes === undefined ? req : counted(req, bytes);
    streamedBody = true;
  }
  const headersTimeout = options.longLived === true || streamedBody ? 0 : (options.responseHeaderTimeoutMs ?? upstream.responseHeaderTimeoutMs);

  // The client left (closed the connection or aborted): the upstream must not keep working for nobody.
  res.on('close', () => {
    if (!res.writableFinished) controller?.abort(new Error('client closed'));
  });
  req.on('error', () => controller?.abort(new Error('client request failed')));

  let paused = false;
  let streamed = false;
  const onDrain = (): void => {
    paused = false;
    controller?.resume();
  };
  upstream.pool.dispatch(
    {
      origin: upstream.origin,
      method: req.method ?? 'GET',
      path: upstream.basePath + options.path,
      headers: options.headers,
      headersTimeout,
      // undici takes async iterables as bodies (its request.js); its DispatchOptions type names only Readable.
      body: body as Buffer | null,
    },
    {
      onRequestStart(c) {
        controller = c;
        if (res.destroyed) c.abort(new Error('client closed'));
      },
      onResponseStart(c, status, headers, statusMessage) {
        if (res.destroyed) {
          c.abort(new Error('client closed'));
          return;
        }
        streamed = headers['content-length'] === undefined;
        res.writeHead(status, statusMessage, relayedHeaders(headers));
        // A body without Content-Length is usually a stream (watch, logs -f): the client needs the head now.
        if (streamed) res.flushHeaders();
        const type = headers['content-type'];
        options.onResponse?.(status, typeof type === 'string' ? type : undefined);
        observer?.head(status);
      },
      onResponseData(c, chunk) {
        if (stopped) return;
        if (bytes !== undefined) bytes.out += chunk.length;
        observer?.data(chunk);
        // Paused only once RESPONSE_BUFFER_BYTES wait for the client, resumed when they are all out: pausing undici
        // at the socket's 16 KB mark paused it for almost every chunk of a large body, and each resume re-reads what
        // its socket holds (docs/performance.md, step 11).
        if (!res.write(chunk) && res.writableLength >= RESPONSE_BUFFER_BYTES && !paused) {
          paused = true;
          c.pause();
          res.once('drain', onDrain);
        }
      },
      onResponseEnd() {
        if (stopped) return;
        if (observer === undefined) {
          res.end();
          return;
        }
        void observer.complete().then(
          (extra) => {
            if (extra !== undefined && streamed && !res.destroyed) {
              if (bytes !== undefined) bytes.out += extra.length;
              res.write(extra);
            }
            res.end();
          },
          () => res.end(),
        );
      },
      onResponseError(_c, err) {
        // Also when the upstream broke off mid-body: destroying the response keeps a truncated body from looking complete.
        fail(err);
      },
    },
  );
}
