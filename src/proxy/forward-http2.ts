import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { ByteCount } from './byte-count.js';
import { HOP_BY_HOP, relayedHeaders } from './hop-by-hop.js';
import type { Http2Sessions } from './http2-sessions.js';

const { NGHTTP2_CANCEL } = http2.constants;

/**
 * A flat header list (as for HTTP/1.1, Host included) as HTTP/2 request headers: names lower-cased, Host as
 * :authority, connection-specific headers dropped (RFC 9113 8.2.2), and a repeated header kept as repeated fields
 * (two Impersonate-Group headers stay two groups; joining them with ", " would make one group of both names).
 */
export function http2RequestHeaders(method: string, path: string, flat: readonly string[]): http2.OutgoingHttpHeaders {
  const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    if (name === 'host') {
      headers[':authority'] = value;
      continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    const before = headers[name];
    if (before === undefined) headers[name] = value;
    else headers[name] = Array.isArray(before) ? [...before, value] : [String(before), value];
  }
  return headers;
}

/**
 * Forwards a long-lived GET (a watch, `logs -f`) as a stream on a shared HTTP/2 connection: the response head goes
 * to the client at once, each chunk as it arrives, back-pressure pauses the stream (only that stream), and the
 * stream is cancelled the moment the client leaves (invariants.md 30). Should the stream fail before any answer
 * (the upstream refused HTTP/2, or the connection could not be made), `fallback` sends the request the HTTP/1.1 way
 * instead: it has no body, so nothing is lost by asking again.
 */
export interface Http2ForwardOptions {
  /** The upstream path with its base path and the query. */
  readonly fullPath: string;
  /** The outgoing header list, flat, Host included. */
  readonly headers: readonly string[];
  readonly bytes?: ByteCount;
  readonly onResponse?: (status: number, contentType: string | undefined) => void;
  /** Aborted: the stream is cancelled and nothing more is relayed; the caller ends the response (forward.ts). */
  readonly signal?: AbortSignal;
}

export function forwardOverHttp2(req: IncomingMessage, res: ServerResponse, sessions: Http2Sessions, options: Http2ForwardOptions, fallback: () => void): void {
  const { bytes } = options;
  const stream = sessions.request(http2RequestHeaders(req.method ?? 'GET', options.fullPath, options.headers));
  let answered = false;
  let ended = false;
  let stopped = false;

  const cancel = (): void => {
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
  };
  res.on('close', () => {
    if (!res.writableFinished) cancel();
  });
  options.signal?.addEventListener('abort', () => {
    stopped = true;
    cancel();
  });

  stream.on('response', (headers) => {
    answered = true;
    if (res.destroyed) {
      cancel();
      return;
    }
    const status = Number(headers[':status']);
    res.writeHead(status, relayedHeaders(headers) as IncomingHttpHeaders);
    res.flushHeaders();
    options.onResponse?.(status, typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined);
    // Read the body only now: Node emits 'response' on the next tick but 'data' at once, so a head and a first chunk
    // that arrive together would otherwise reach the client as a chunk first (with a default 200 head of Node's) and
    // then a head nobody can write any more, which threw out of the event loop.
    stream.on('data', (chunk: Buffer) => {
      if (stopped) return;
      if (bytes !== undefined) bytes.out += chunk.length;
      if (!res.write(chunk)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });
  });
  stream.on('end', () => {
    ended = true;
    if (!stopped) res.end();
  });
  stream.on('error', () => undefined);
  stream.on('close', () => {
    if (ended || stopped || res.destroyed) return;
    if (!answered) {
      // Nothing reached the client yet: the HTTP/1.1 way may still work (and otherwise says why it does not).
      if (stream.rstCode !== NGHTTP2_CANCEL) fallback();
      return;
    }
    // Broken off mid-body: destroying the response keeps a truncated watch from looking complete.
    res.destroy();
  });
}
