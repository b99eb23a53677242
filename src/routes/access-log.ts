import type { IncomingMessage } from 'node:http';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import type { Logger } from '../observability/logger.js';

/** Per-request access records of one COE mount: never headers, never the query (it may carry secrets). */
export interface AccessLog {
  request(req: IncomingMessage, identity: AnyIdentity | undefined, status: number, started: number): void;
  /** The hooks forwardUpgrade calls: a record when the upgrade is answered, another when the session ends. */
  upgrade(req: IncomingMessage, identity: AnyIdentity, started: number): {
    onRefused: (status: number) => void;
    onUpgraded: () => { onClose: () => void };
  };
}

export function accessLog(logger: Logger, coe: string): AccessLog {
  const pathOf = (req: IncomingMessage): string => (req.url ?? '').split('?')[0] as string;
  const request: AccessLog['request'] = (req, identity, status, started) => {
    logger.info(
      {
        coe,
        method: req.method,
        path: pathOf(req),
        status,
        ms: Math.round(performance.now() - started),
        user: identity?.user.name,
        project: identity === undefined ? undefined : isProjectScoped(identity) ? identity.project.id : identity.scope,
      },
      'request',
    );
  };
  return {
    request,
    upgrade: (req, identity, started) => ({
      onRefused: (status) => request(req, identity, status, started),
      onUpgraded: () => {
        request(req, identity, 101, started);
        return {
          onClose: () =>
            logger.info({ coe, path: pathOf(req), user: identity.user.name, ms: Math.round(performance.now() - started) }, 'upgraded session ended'),
        };
      },
    }),
  };
}
