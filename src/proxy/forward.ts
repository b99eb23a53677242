import type { IncomingMessage, ServerResponse } from 'node:http';
import { countInto, type ByteCount } from './byte-count.js';
import { responseHeaders } from './hop-by-hop.js';
import { UpstreamError } from './errors.js';
import type { Upstream } from './upstream.js';

export interface ForwardOptions {
  readonly upstream: Upstream;
  /** Path and query as they go upstream (below the upstream's own base path). */
  readonly path: string;
  /** The complete outgoing header list, flat like rawHeaders, Host included. */
  readonly headers: string[];
  /** Called when the upstream fails before a response started; the caller answers in its dialect. */
  readonly onError: (err: UpstreamError) => void;
  /** A body that replaces the client's (already read and checked); its length must be in `headers`. */
  readonly body?: Buffer;
  /** Called once with the upstream status when the response head is relayed. */
  readonly onResponse?: (status: number) => void;
  /** Counts the body bytes relayed each way. */
  readonly bytes?: ByteCount;
}

/**
 * Forwards one HTTP request and streams both bodies: nothing is buffered beyond what the sockets hold, each chunk
 * goes on as it arrives, and no timeout applies (watches and `logs -f` run for as long as both ends want).
 * When the client goes away first, the upstream request is torn down at once (invariants.md 30).
 */
export function forwardRequest(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
  const { upstream } = options;
  const outgoing = upstream.request(upstream.requestOptions(req.method ?? 'GET', options.path, options.headers, false));

  outgoing.on('response', (upstreamRes) => {
    if (res.destroyed) {
      upstreamRes.destroy();
      return;
    }
    const status = upstreamRes.statusCode ?? 502;
    res.writeHead(status, upstreamRes.statusMessage, responseHeaders(upstreamRes.rawHeaders));
    // A body without Content-Length is usually a stream (watch, logs -f): the client needs the head now.
    if (upstreamRes.headers['content-length'] === undefined) res.flushHeaders();
    options.onResponse?.(status);
    countInto(upstreamRes, options.bytes, 'out');
    upstreamRes.on('close', () => {
      // The upstream broke off mid-body: do not let a truncated body look complete.
      if (!upstreamRes.complete) res.destroy();
    });
    upstreamRes.pipe(res);
  });

  outgoing.on('error', (err) => {
    if (res.destroyed) return;
    if (res.headersSent) res.destroy();
    else options.onError(UpstreamError.from(err));
  });

  // The client left (closed the connection or aborted): the upstream must not keep working for nobody.
  res.on('close', () => {
    if (!res.writableFinished) outgoing.destroy();
  });
  req.on('error', () => outgoing.destroy());
  if (options.body !== undefined) {
    if (options.bytes !== undefined) options.bytes.in += options.body.length;
    outgoing.end(options.body);
  } else {
    countInto(req, options.bytes, 'in');
    req.pipe(outgoing);
  }
}
