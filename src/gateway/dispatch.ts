import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import type { CoeMount } from '../routes/mount.js';
import { PathError, parseRequestTarget } from '../routes/path.js';
import { gatewayDialect, sendError, sendErrorOnSocket, toErrorReply } from '../routes/respond.js';

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
): Dispatcher {
  const byName = new Map(mounts.map((m) => [m.name, m]));
  const dialectFor = (err: unknown) =>
    (err instanceof PathError && err.firstSegment !== undefined ? byName.get(err.firstSegment)?.dialect : undefined) ??
    gatewayDialect;

  return {
    onRequest(req, res) {
      let target;
      try {
        target = parseRequestTarget(req.url ?? '/');
      } catch (err) {
        sendError(res, dialectFor(err), toErrorReply(err, logger));
        return;
      }
      const mount = byName.get(target.segments[0] as string);
      if (mount !== undefined) mount.handleRequest(req, res, target);
      else endpoints(req, res);
    },

    onUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      let target;
      try {
        target = parseRequestTarget(req.url ?? '/');
      } catch (err) {
        sendErrorOnSocket(socket, dialectFor(err), toErrorReply(err, logger));
        return;
      }
      const mount = byName.get(target.segments[0] as string);
      if (mount !== undefined) mount.handleUpgrade(req, socket, head, target);
      else sendErrorOnSocket(socket, gatewayDialect, { status: 404, message: `no upgradeable endpoint at ${target.rawPath}` });
    },
  };
}
