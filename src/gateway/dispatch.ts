import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import type { Exchange } from '../routes/exchange.js';
import type { CoeMount } from '../routes/mount.js';
import { PathError, parseRequestTarget } from '../routes/path.js';
import { gatewayDialect, sendError, sendErrorOnSocket, toErrorReply, type Dialect, type ErrorReply } from '../routes/respond.js';

export interface Dispatcher {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * Routes each request by its checked first path segment: a COE mount gets it directly (the hot path stays free of
 * framework layers), anything else goes to the gateway's own endpoints. Upgrades take the same way.
 */
export function createDispatcher(
  mounts: readonly CoeMount[],
  endpoints: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  /** Refusals made here (malformed paths, no such endpoint, `admit`'s) are audited like a COE's. */
  startExchange: (req: IncomingMessage) => Exchange,
  /** Checked first for every request and upgrade: a refusal answers at once (mutual TLS without a good certificate). */
  admit: (req: IncomingMessage) => ErrorReply | undefined = () => undefined,
): Dispatcher {
  const byName = new Map(mounts.map((m) => [m.name, m]));
  const dialectFor = (err: unknown) =>
    (err instanceof PathError && err.firstSegment !== undefined ? byName.get(err.firstSegment)?.dialect : undefined) ??
    gatewayDialect;

  const refuseUpgrade = (req: IncomingMessage, socket: Duplex, reply: ErrorReply, dialect: Dialect): void => {
    const exchange = startExchange(req);
    exchange.observeUpgrade(socket);
    exchange.refuseWith(reply, (r) => sendErrorOnSocket(socket, dialect, r));
  };

  return {
    onRequest(req, res) {
      const refusal = admit(req);
      if (refusal !== undefined) {
        const exchange = startExchange(req);
        exchange.observe(res);
        exchange.refuseWith(refusal, (r) => sendError(res, gatewayDialect, r));
        return;
      }
      let target;
      try {
        target = parseRequestTarget(req.url ?? '/');
      } catch (err) {
        const exchange = startExchange(req);
        exchange.observe(res);
        exchange.refuseWith(toErrorReply(err, logger), (r) => sendError(res, dialectFor(err), r));
        return;
      }
      const mount = byName.get(target.segments[0] as string);
      if (mount !== undefined) mount.handleRequest(req, res, target);
      else endpoints(req, res);
    },

    onUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      const refusal = admit(req);
      if (refusal !== undefined) return refuseUpgrade(req, socket, refusal, gatewayDialect);
      let target;
      try {
        target = parseRequestTarget(req.url ?? '/');
      } catch (err) {
        refuseUpgrade(req, socket, toErrorReply(err, logger), dialectFor(err));
        return;
      }
      const mount = byName.get(target.segments[0] as string);
      if (mount !== undefined) mount.handleUpgrade(req, socket, head, target);
      else refuseUpgrade(req, socket, { status: 404, message: `no upgradeable endpoint at ${target.rawPath}` }, gatewayDialect);
    },
  };
}
