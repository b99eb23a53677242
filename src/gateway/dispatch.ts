import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import type { Exchange } from '../routes/exchange.js';
import type { CoeMount, Signpost } from '../routes/mount.js';
import { firstSegmentOf, parseRequestTarget, type RequestTarget } from '../routes/path.js';
import { boundBodyAfterAnswer, gatewayDialect, replyFor, sendError, sendErrorOnSocket, type Dialect, type ErrorReply } from '../routes/respond.js';

export interface Dispatcher {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

type Refusal = { readonly reply: ErrorReply; readonly dialect: Dialect };

/**
 * Routes each request by its checked first path segment: a COE mount gets it directly (the hot path stays free of
 * framework layers), anything else goes to the gateway's own endpoints. Upgrades take the same way. Paths of one COE's
 * API sent without its prefix (at the root, or under another COE's mount) are answered with that COE's hint.
 */
export function createDispatcher(
  mounts: readonly CoeMount[],
  /** Every COE the gateway knows, served or not: a Docker API path below /k8s is told about /docker either way. */
  signposts: readonly Signpost[],
  endpoints: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  /** Refusals made here (malformed paths, no such endpoint, `admit`'s) are audited like a COE's. */
  startExchange: (req: IncomingMessage) => Exchange,
  /** Checked first for every request and upgrade: a refusal answers at once (mutual TLS without a good certificate). */
  admit: (req: IncomingMessage) => ErrorReply | undefined = () => undefined,
): Dispatcher {
  const byName = new Map(mounts.map((m) => [m.name, m]));

  /** Where the request goes, or why it goes nowhere (in the dialect its client reads). */
  const resolve = (req: IncomingMessage): { mount: CoeMount; target: RequestTarget } | { target: RequestTarget } | Refusal => {
    const refusal = admit(req);
    if (refusal !== undefined) return { reply: refusal, dialect: gatewayDialect };
    let target: RequestTarget;
    try {
      target = parseRequestTarget(req.url ?? '/');
    } catch (err) {
      const first = firstSegmentOf(req.url ?? '/');
      return { reply: replyFor(err, logger), dialect: (first !== undefined ? byName.get(first)?.dialect : undefined) ?? gatewayDialect };
    }
    const first = target.segments[0] as string;
    const mount = byName.get(first);
    // Another COE's API root at the gateway's root, or below a mount that forwards every path as it is: the client's
    // base URL lacks a prefix (DOCKER_HOST=tcp://gw/k8s would get the apiserver's "cannot get path /v1.41/...").
    const next = mount === undefined ? first : mount.verbatim ? target.segments[1] : undefined;
    const candidates: readonly Signpost[] = mount === undefined ? mounts : signposts.filter((s) => s.name !== mount.name);
    const missed = next === undefined || mount?.isApiRoot(next) === true ? undefined : candidates.find((s) => s.isApiRoot(next));
    if (missed !== undefined) {
      return { reply: { status: 404, message: `nothing at ${target.rawPath}: ${missed.prefixHint}` }, dialect: (mount ?? missed).dialect };
    }
    return mount !== undefined ? { mount, target } : { target };
  };

  const refuse = (req: IncomingMessage, refusal: Refusal, write: (dialect: Dialect, reply: ErrorReply) => number, observe: (exchange: Exchange) => void): void => {
    const exchange = startExchange(req);
    observe(exchange);
    exchange.refuseWith(refusal.reply, (r) => write(refusal.dialect, r));
  };

  return {
    onRequest(req, res) {
      const where = resolve(req);
      if ('reply' in where) return refuse(req, where, (d, r) => sendError(res, d, r), (e) => e.observe(res));
      if ('mount' in where) return where.mount.handleRequest(req, res, where.target);
      // The gateway's own endpoints need no credentials to read a body (the admission webhook's caller is the apiserver).
      if (/^100-continue$/i.test(String(req.headers.expect ?? '').trim())) res.writeContinue();
      boundBodyAfterAnswer(res);
      endpoints(req, res);
    },

    onUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      const where = resolve(req);
      const observe = (e: Exchange): void => void e.observeUpgrade(socket);
      if ('reply' in where) return refuse(req, where, (d, r) => sendErrorOnSocket(socket, d, r), observe);
      if ('mount' in where) return where.mount.handleUpgrade(req, socket, head, where.target);
      refuse(req, { reply: { status: 404, message: `no upgradeable endpoint at ${where.target.rawPath}` }, dialect: gatewayDialect }, (d, r) => sendErrorOnSocket(socket, d, r), observe);
    },
  };
}
