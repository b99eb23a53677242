import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Authenticator } from '../auth/authenticator.js';
import { extractToken } from '../auth/credentials.js';
import { isProjectScoped } from '../auth/identity.js';
import type { Logger } from '../observability/logger.js';
import type { CoeMount } from '../routes/mount.js';
import { gatewayDialect, replyFor, sendError } from '../routes/respond.js';

/**
 * GET /whoami: who the gateway takes the caller for, and what each COE maps them to (the Kubernetes namespace).
 * `zun-gateway kubeconfig` reads the namespace from here.
 */
export function whoamiHandler(authenticator: Authenticator, mounts: readonly CoeMount[], authUrl: string, logger: Logger) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const identity = await authenticator.authenticateAnyScope(extractToken(req.rawHeaders, { upgrade: false }));
      const coes: Record<string, unknown> = {};
      const base = gatewayBase(req);
      for (const m of mounts) coes[m.name] = await m.describe(identity, base);
      const k8s = coes.k8s as { namespace?: string } | undefined;
      const body = JSON.stringify({
        user: { id: identity.user.id, name: identity.user.name, domain: { id: identity.user.domainId, name: identity.user.domainName } },
        ...(isProjectScoped(identity)
          ? {
              scope: 'project',
              project: {
                id: identity.project.id,
                name: identity.project.name,
                domain: { id: identity.project.domainId, name: identity.project.domainName },
              },
            }
          : { scope: identity.scope, ...(identity.domain !== undefined ? { domain: identity.domain } : {}) }),
        roles: identity.roles,
        expiresAt: identity.expiresAt.toISOString(),
        ...(isProjectScoped(identity) && identity.applicationCredentialId !== undefined
          ? { applicationCredentialId: identity.applicationCredentialId }
          : {}),
        ...(k8s?.namespace !== undefined ? { namespace: k8s.namespace } : {}),
        coes,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } catch (err) {
      const reply = replyFor(err, logger);
      sendError(res, gatewayDialect, reply.status === 401 ? { ...reply, headers: { 'WWW-Authenticate': `Keystone uri="${authUrl}"` } } : reply);
    }
  };
}

/** A Host header as a URL's authority may have it: a name or an address, and a port. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The gateway's URL as the caller reached it, for the server URLs /whoami lists: the caller's Host, or the address
 * it connected to when the Host cannot be one.
 */
function gatewayBase(req: IncomingMessage): string {
  const scheme = (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http';
  const host = req.headers.host;
  if (host !== undefined && HOST.test(host)) return `${scheme}://${host}`;
  const address = req.socket.localAddress ?? '127.0.0.1';
  return `${scheme}://${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? ''}`;
}
