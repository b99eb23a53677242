import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import type { Exchange } from '../routes/exchange.js';
import type { CoeMount } from '../routes/mount.js';
import { DOCKER_PREFIX_HINT, PathError, isDockerApiRoot, parseRequestTarget } from '../routes/path.js';
import { gatewayDialect, sendError, sendErrorOnSocket, toErrorReply, type Dialect, type ErrorReply } from '../routes/respond.js';

/** First path segments of each COE's API: a request for one at the root left out the mount's prefix. */
const API_ROOTS: ReadonlyArray<{ readonly mount: string; readonly matches: (segment: string) => boolean; readonly hint: string }> = [
  {
    mount: 'k8s',
    matches: (s) => s === 'api' || s === 'apis' || s === 'openapi' || s === 'version',
    // kubectl keeps the server URL's path for every request except `get --raw` (invariants.md 28).
    hint: 'Kubernetes API paths are under /k8s on this gateway: a kubeconfig\'s server must end in /k8s (server: https://<gateway>/k8s); `kubectl get --raw` does not add the server\'s path, so give it whole: kubectl get --raw /k8s/api/...',
  },
  {
    mount: 'docker',
    matches: isDockerApiRoot,
    hint: DOCKER_PREFIX_HINT,
  },
];

/** The reply for a COE's API path requested without its prefix, in that COE's dialect; undefined for other paths. */
function missedPrefix(byName: ReadonlyMap<string, CoeMount>, first: string, rawPath: string): { reply: ErrorReply; dialect: Dialect } | undefined {
  const root = API_ROOTS.find((r) => r.matches(first) && byName.has(r.mount));
  const mount = root === undefined ? undefined : byName.get(root.mount);
  if (root === undefined || mount === undefined) return undefined;
  return { reply: { status: 404, message: `nothing at ${rawPath}: ${root.hint}` }, dialect: mount.dialect };
}

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
      const first = target.segments[0] as string;
      const mount = byName.get(first);
      if (mount !== undefined) return mount.handleRequest(req, res, target);
      const missed = missedPrefix(byName, first, target.rawPath);
      if (missed === undefined) return endpoints(req, res);
      const exchange = startExchange(req);
      exchange.observe(res);
      exchange.refuseWith(missed.reply, (r) => sendError(res, missed.dialect, r));
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
      const first = target.segments[0] as string;
      const mount = byName.get(first);
      if (mount !== undefined) return mount.handleUpgrade(req, socket, head, target);
      const missed = missedPrefix(byName, first, target.rawPath);
      if (missed !== undefined) return refuseUpgrade(req, socket, missed.reply, missed.dialect);
      refuseUpgrade(req, socket, { status: 404, message: `no upgradeable endpoint at ${target.rawPath}` }, gatewayDialect);
    },
  };
}
