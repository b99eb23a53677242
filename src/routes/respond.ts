import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { rawResponse } from '../proxy/raw-response.js';
import { closeAfterAnswer } from '../proxy/upgrade.js';

/** An error on its way to the client: status, a message for the user, extra headers. */
export interface ErrorReply {
  readonly status: number;
  readonly message: string;
  readonly code?: ErrorCode;
  readonly headers?: Readonly<Record<string, string>>;
}

/** How one COE writes errors: Kubernetes Status, Docker {"message"}, or the gateway's own JSON. */
export type Dialect = (reply: ErrorReply) => { contentType: string; body: string };

export const gatewayDialect: Dialect = (reply) => ({
  contentType: 'application/json',
  body: JSON.stringify({ error: reply.status, message: reply.message }),
});

/**
 * Any thrown value -> ErrorReply. A GatewayError was made for the user and keeps its message; anything else is an
 * internal error whose details go to the log only (no stack traces to clients).
 */
export function replyFor(err: unknown, logger: Logger): ErrorReply {
  if (err instanceof GatewayError) {
    if (err.code === 'outgoing_violation') logger.error({ reason: err.message }, 'refused to send a request that broke an invariant');
    return { status: err.status, message: err.code === 'outgoing_violation' ? INTERNAL : err.message, code: err.code, ...(err.headers !== undefined ? { headers: err.headers } : {}) };
  }
  logger.error({ err }, 'unexpected error while handling a request');
  return { status: 500, message: INTERNAL, code: 'internal' };
}

const INTERNAL = 'internal error in the gateway; the operator can find details in its log';

/** How long a refused request's body may go on arriving after the refusal was sent. */
export const REFUSED_BODY_LINGER_MS = 5_000;

/**
 * A request refused while its body is still arriving: the rest is read and dropped (so the client, still sending,
 * can read the refusal) for at most REFUSED_BODY_LINGER_MS after the answer, then the connection is closed. Without
 * the limit a client without a token could hold a connection open by sending a huge body a byte at a time.
 */
function limitRefusedBody(res: ServerResponse): void {
  const req = res.req as ServerResponse['req'] | undefined;
  if (req === undefined || req.complete) return;
  req.resume();
  res.once('finish', () => {
    if (req.complete) return;
    setTimeout(() => {
      if (!req.complete) req.socket.destroy();
    }, REFUSED_BODY_LINGER_MS).unref();
  });
}

/**
 * For answers made before the body was read (the gateway's own endpoints: a 404, /healthz): once the answer is
 * written, a body still arriving gets REFUSED_BODY_LINGER_MS, as a refused one does. Node reads and drops the rest of
 * an unread body for as long as it comes, so a client without a token held a connection by dripping one.
 */
export function boundBodyAfterAnswer(res: ServerResponse): void {
  res.once('finish', () => {
    const req = res.req as ServerResponse['req'] | undefined;
    if (req === undefined || req.complete) return;
    req.resume();
    setTimeout(() => {
      if (!req.complete) req.socket.destroy();
    }, REFUSED_BODY_LINGER_MS).unref();
  });
}

/** Writes the error in the COE's dialect; returns the body's size in bytes (0 when the response had already begun). */
export function sendError(res: ServerResponse, dialect: Dialect, reply: ErrorReply): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  limitRefusedBody(res);
  const { contentType, body } = dialect(reply);
  res.writeHead(reply.status, {
    ...reply.headers,
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
  return Buffer.byteLength(body);
}

/** The same for a connection that asked for an upgrade: an HTTP response written on the raw socket, then close. */
export function sendErrorOnSocket(socket: Duplex, dialect: Dialect, reply: ErrorReply): number {
  if (socket.destroyed) return 0;
  const { contentType, body } = dialect(reply);
  const headers = [...Object.entries(reply.headers ?? {}).flat(), 'Content-Type', contentType];
  closeAfterAnswer(socket);
  socket.end(rawResponse(reply.status, headers, body));
  return Buffer.byteLength(body);
}
