import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { countInto, type ByteCount } from './byte-count.js';
import { responseHeaders, upgradeResponseHeaders } from './hop-by-hop.js';
import type { GatewayError } from '../errors.js';
import { upstreamFailure } from './errors.js';
import { rawResponse } from './raw-response.js';
import { pipeSockets } from './pipe-sockets.js';
import type { Upstream } from './upstream.js';

export interface UpgradeOptions {
  readonly upstream: Upstream;
  readonly path: string;
  /** Complete outgoing headers, Connection: Upgrade and Upgrade included. */
  readonly headers: string[];
  readonly onError: (err: GatewayError) => void;
  /** The request body sent before the upgrade (Docker's exec start carries JSON); its length is in `headers`. */
  readonly body?: Buffer;
  /** The upstream agreed (101) and bytes now flow; onClose runs when the session ends. */
  readonly onUpgraded?: () => { onClose: () => void } | void;
  /** The upstream refused the upgrade with an ordinary response, relayed unchanged. */
  readonly onRefused?: (status: number) => void;
  /** Counts the bytes relayed each way once the request went upstream (session bytes after a 101, or the refusal's body). */
  readonly bytes?: ByteCount;
  /** A session with no byte either way for this long is closed (0 or unset: never), `onIdle` told first. */
  readonly idle?: { readonly ms: number; readonly onIdle: () => void };
}

/** How long a client may keep a connection open after the gateway answered it for good (Connection: close). */
const LINGER_MS = 5000;

/**
 * Once a final answer on a raw socket is written, the client should close; one that does not must not hold the
 * connection (and a file descriptor) forever. The short wait lets the client read the answer before the close.
 */
export function closeAfterAnswer(socket: Duplex): void {
  socket.once('finish', () => setTimeout(() => socket.destroy(), LINGER_MS).unref());
}

/**
 * Forwards a protocol upgrade of any kind (WebSocket over GET, SPDY/3.1 or Docker's tcp over POST: invariants.md 26)
 * over HTTP/1.1 and, once the upstream answers 101, pipes raw bytes both ways. A refused handshake reaches the client
 * as the upstream sent it, so kubectl can fall back from WebSocket to SPDY (invariants.md 10).
 */
export function forwardUpgrade(req: IncomingMessage, socket: Duplex, clientHead: Buffer, options: UpgradeOptions): void {
  const { upstream } = options;
  // The client already went away (while it was being authenticated): nothing to forward.
  if (socket.destroyed || socket.readableEnded) {
    socket.destroy();
    return;
  }
  const outgoing = upstream.request(upstream.upgradeOptions(req.method ?? 'GET', options.path, options.headers));
  let answered = false;

  const abandon = (): void => {
    outgoing.destroy();
  };
  // http servers keep sockets half-open, so a client that leaves before the handshake is answered causes 'end' but
  // never 'close': without this the upstream would hold the handshake (and the gateway the socket) indefinitely.
  const clientGone = (): void => {
    socket.destroy();
  };
  socket.once('close', abandon);
  socket.on('error', abandon);
  socket.once('end', clientGone);

  outgoing.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
    answered = true;
    socket.off('close', abandon);
    socket.off('error', abandon);
    socket.off('end', clientGone);
    if (socket.destroyed) {
      upstreamSocket.destroy();
      return;
    }
    socket.write(rawResponse(upstreamRes.statusCode ?? 101, upgradeResponseHeaders(upstreamRes.rawHeaders), undefined, upstreamRes.statusMessage ?? ''));
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (clientHead.length > 0) upstreamSocket.write(clientHead);
    if (options.bytes !== undefined) {
      options.bytes.out += upstreamHead.length;
      options.bytes.in += clientHead.length;
    }
    const session = options.onUpgraded?.();
    pipeSockets(socket, upstreamSocket, session ? session.onClose : undefined, options.bytes, options.idle);
  });

  outgoing.on('response', (upstreamRes) => {
    answered = true;
    socket.off('end', clientGone);
    options.onRefused?.(upstreamRes.statusCode ?? 502);
    if (socket.destroyed) {
      upstreamRes.destroy();
      return;
    }
    const headers = responseHeaders(upstreamRes.rawHeaders);
    headers.push('Connection', 'close');
    closeAfterAnswer(socket);
    socket.write(rawResponse(upstreamRes.statusCode ?? 502, headers, undefined, upstreamRes.statusMessage ?? ''));
    upstreamRes.on('close', () => {
      if (!upstreamRes.complete) socket.destroy();
    });
    countInto(upstreamRes, options.bytes, 'out');
    upstreamRes.pipe(socket);
  });

  outgoing.on('error', (err) => {
    if (socket.destroyed) return;
    if (answered) socket.destroy();
    else options.onError(upstreamFailure(err));
  });

  if (options.body !== undefined && options.bytes !== undefined) options.bytes.in += options.body.length;
  outgoing.end(options.body);
}
