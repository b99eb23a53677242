import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { ByteCount } from './byte-count.js';
import { GatewayError } from '../errors.js';
import { responseHeadTimeout, upstreamFailure } from './errors.js';
import { HOP_BY_HOP, relayedHeaders } from './hop-by-hop.js';
import type { Http2Sessions } from './http2-sessions.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

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

export interface Http2ForwardOptions {
  /** The upstream path with its base path and the query. */
  readonly fullPath: string;
  /** The outgoing header list, flat, Host included. */
  readonly headers: readonly string[];
  /** A checked body that replaces the client's (its length is in `headers`). */
  readonly body?: Buffer;
  /** The client's own body is streamed up (it sends one and `body` does not replace it). */
  readonly streamBody?: boolean;
  /** How long the upstream may take to start its answer once the request is sent (0 or undefined: no limit). */
  readonly headersTimeoutMs?: number;
  /**
   * How much of the answer may wait for a slow client before the stream is paused (undefined: pause as soon as the
   * client's socket is past its mark, as watches do: each slow watcher then holds back only its own stream).
   */
  readonly responseBufferBytes?: number;
  readonly bytes?: ByteCount;
  readonly onResponse?: (status: number, contentType: string | undefined) => void;
  /** The upstream failed before any answer and `fallback` could not be taken; the caller answers in its dialect. */
  readonly onError?: (err: GatewayError) => void;
  /** Aborted: the stream is cancelled and nothing more is relayed; the caller ends the response (forward.ts). */
  readonly signal?: AbortSignal;
}

/** Methods that change nothing: sent again the HTTP/1.1 way when their stream failed before any answer. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Forwards a request as a stream on a shared HTTP/2 connection: the response head goes to the client as it comes
 * (at once when the body has no length: a watch), each chunk as it arrives, back-pressure pauses the stream (only
 * that stream), and the stream is cancelled the moment the client leaves (invariants.md 30). Should the stream fail
 * before any answer, `fallback` sends the request the HTTP/1.1 way instead when that cannot do anything twice: a
 * safe method, or a stream the upstream never saw (no connection, or refused before processing, RFC 9113 8.7), and
 * no part of the client's own body read yet (a body read and checked before is sent again whole). Otherwise
 * `onError` says why.
 */
export function forwardOverHttp2(req: IncomingMessage, res: ServerResponse, sessions: Http2Sessions, options: Http2ForwardOptions, fallback: () => void): void {
  const { bytes } = options;
  const method = req.method ?? 'GET';
  const streamBody = options.streamBody === true;
  const endStream = options.body === undefined && !streamBody;
  let stream: http2.ClientHttp2Stream;
  try {
    stream = sessions.request(http2RequestHeaders(method, options.fullPath, options.headers), endStream);
  } catch {
    // Node's client refused the header list before sending anything (a header it sends only once, such as
    // User-Agent, given twice): the HTTP/1.1 way relays it as the client sent it.
    fallback();
    return;
  }
  let answered = false;
  let ended = false;
  let stopped = false;
  let failure: Error | undefined;
  let bodyRead = false;
  let timer: NodeJS.Timeout | undefined;

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
  const headersTimeoutMs = options.headersTimeoutMs ?? 0;
  if (headersTimeoutMs > 0) {
    timer = setTimeout(() => {
      failure = responseHeadTimeout(headersTimeoutMs);
      cancel();
    }, headersTimeoutMs);
  }

  if (options.body !== undefined) {
    if (bytes !== undefined) bytes.in += options.body.length;
    stream.end(options.body);
  } else if (streamBody) {
    req.on('error', cancel);
    // The client's body is read only once the stream is open: should the connection fail first (the upstream does
    // not speak HTTP/2), the body is still unread and the HTTP/1.1 way can send it whole.
    const pipeBody = (): void => {
      bodyRead = true;
      if (bytes !== undefined) req.on('data', (chunk: Buffer) => (bytes.in += chunk.length));
      req.pipe(stream);
    };
    // On a connection already open the stream is open at once ('ready' has been emitted already).
    if (stream.pending) stream.once('ready', pipeBody);
    else pipeBody();
  }

  stream.on('response', (headers) => {
    answered = true;
    if (timer !== undefined) clearTimeout(timer);
    if (res.destroyed) {
      cancel();
      return;
    }
    const status = Number(headers[':status']);
    res.writeHead(status, relayedHeaders(headers) as IncomingHttpHeaders);
    // A body without Content-Length is usually a stream (watch, logs -f): the client needs the head now.
    if (headers['content-length'] === undefined) res.flushHeaders();
    options.onResponse?.(status, typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined);
    const mark = options.responseBufferBytes ?? 0;
    let paused = false;
    const onDrain = (): void => {
      paused = false;
      stream.resume();
    };
    // Read the body only now: Node emits 'response' on the next tick but 'data' at once, so a head and a first chunk
    // that arrive together would otherwise reach the client as a chunk first (with a default 200 head of Node's) and
    // then a head nobody can write any more, which threw out of the event loop.
    stream.on('data', (chunk: Buffer) => {
      if (stopped) return;
      if (bytes !== undefined) bytes.out += chunk.length;
      if (!res.write(chunk) && res.writableLength >= mark && !paused) {
        paused = true;
        stream.pause();
        res.once('drain', onDrain);
      }
    });
  });
  stream.on('end', () => {
    ended = true;
    if (!stopped) res.end();
  });
  stream.on('error', (err: Error) => {
    failure ??= err;
  });
  stream.on('close', () => {
    if (timer !== undefined) clearTimeout(timer);
    if (ended || stopped || res.destroyed) return;
    if (answered) {
      // Broken off mid-body: destroying the response keeps a truncated body from looking complete.
      res.destroy();
      return;
    }
    // The client left (cancelled by us, not by a timeout): nobody to answer.
    if (stream.rstCode === NGHTTP2_CANCEL && failure === undefined) return;
    const unseen = stream.id === undefined || stream.rstCode === NGHTTP2_REFUSED_STREAM;
    if (!bodyRead && !(failure instanceof GatewayError) && (SAFE.has(method) || unseen)) {
      // Nothing reached the client yet, and asking again does nothing twice: the HTTP/1.1 way may still work (and
      // otherwise says why it does not). It counts the body it sends itself.
      if (bytes !== undefined && options.body !== undefined) bytes.in -= options.body.length;
      fallback();
      return;
    }
    if (res.headersSent) res.destroy();
    else options.onError?.(upstreamFailure(failure ?? new Error(`the upstream reset the stream (HTTP/2 error ${stream.rstCode})`), headersTimeoutMs));
  });
}
