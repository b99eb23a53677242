import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import { closeAfterAnswer } from '../proxy/upgrade.js';

/** An error on its way to the client: status, a message for the user, extra headers. */
export interface ErrorReply {
  readonly status: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** How one COE writes errors: Kubernetes Status, Docker {"message"}, or the gateway's own JSON. */
export type Dialect = (reply: ErrorReply) => { contentType: string; body: string };

export const gatewayDialect: Dialect = (reply) => ({
  contentType: 'application/json',
  body: JSON.stringify({ error: reply.status, message: reply.message }),
});

/**
 * Any thrown value -> ErrorReply. Errors that carry a 4xx/5xx `status` were made for the user and keep their message;
 * anything else is an internal error whose details go to the log only (no stack traces to clients).
 */
export function toErrorReply(err: unknown, logger: Logger): ErrorReply {
  if (err instanceof Error) {
    const { status, headers } = err as Error & { status?: unknown; headers?: unknown };
    if (typeof status === 'number' && status >= 400 && status <= 599) {
      return typeof headers === 'object' && headers !== null
        ? { status, message: err.message, headers: headers as Record<string, string> }
        : { status, message: err.message };
    }
  }
  logger.error({ err }, 'unexpected error while handling a request');
  return { status: 500, message: 'internal error in the gateway; the operator can find details in its log' };
}

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
  let head = `HTTP/1.1 ${reply.status} ${reply.status < 500 ? 'Request Refused' : 'Gateway Error'}\r\n`;
  for (const [k, v] of Object.entries(reply.headers ?? {})) head += `${k}: ${v}\r\n`;
  head += `Content-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  closeAfterAnswer(socket);
  socket.end(head + body);
  return Buffer.byteLength(body);
}
