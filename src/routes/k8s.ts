import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Authenticator } from '../auth/authenticator.js';
import { extractToken } from '../auth/credentials.js';
import { forbidden } from '../auth/errors.js';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { scopeRefusal } from '../auth/token-identity.js';
import type { ImpersonationConfig } from '../config/schema.js';
import { impersonationHeaders, scopeGroups, scopeImpersonationHeaders, unmappedRolesRefusal } from '../k8s/impersonation.js';
import { k8sRequestHeaders } from '../k8s/request-headers.js';
import { statusBody } from '../k8s/status.js';
import { TenancyError, targetsNamespace, type TenantProvisioner } from '../k8s/tenancy.js';
import type { K8sUpstream } from '../k8s/upstream.js';
import { isDiscovery, isLongLived, isWatch, namespaceOf } from '../k8s/request-kind.js';
import type { AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { exchangeRecorder, type Exchange } from './exchange.js';
import { isCertificateRefusal } from '../proxy/errors.js';
import { forwardRequest } from '../proxy/forward.js';
import { forwardUpgrade } from '../proxy/upgrade.js';
import { upstreamPath, type CoeMount, type Readiness } from './mount.js';
import { DOCKER_PREFIX_HINT, isDockerApiRoot, type RequestTarget } from './path.js';
import { sendError, sendErrorOnSocket, toErrorReply, type Dialect, type ErrorReply } from './respond.js';
import type { ProjectRateLimiter } from './rate-limit.js';
import { settle } from './settle.js';

export interface K8sMountOptions {
  readonly authenticator: Authenticator;
  readonly k8s: K8sUpstream;
  readonly impersonation: ImpersonationConfig;
  /** Set when project namespaces are provisioned (k8s.tenancy). */
  readonly tenancy?: TenantProvisioner;
  /** Keystone's URL, named in WWW-Authenticate so clients know where to get a token. */
  readonly authUrl: string;
  readonly logger: Logger;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  /** Set when k8s.rateLimit is configured: every request and upgrade takes one from its project's bucket. */
  readonly rateLimiter?: ProjectRateLimiter;
  /** Told of every watch about to be forwarded (shutdown ends watches at once: their clients simply watch again). */
  readonly onWatch?: (res: ServerResponse) => void;
}

/** `/k8s/*`: authenticate, replace the client's identity headers with impersonation, forward verbatim. */
export function k8sMount(options: K8sMountOptions): CoeMount {
  const { authenticator, k8s, impersonation, logger } = options;
  const wwwAuthenticate = `Keystone uri="${options.authUrl}"`;

  const dialect: Dialect = (reply) => ({ contentType: 'application/json', body: statusBody(reply.status, reply.message) });

  const reply = (err: unknown): ErrorReply => {
    const r = toErrorReply(err, logger);
    return r.status === 401 ? { ...r, headers: { ...r.headers, 'WWW-Authenticate': wwwAuthenticate } } : r;
  };

  const tenancy = options.tenancy;
  const mapsScopes = impersonation.domainScopeGroups !== undefined || impersonation.systemScopeGroups !== undefined;
  // Identities come from the token cache as the same objects: their impersonation lines are computed once.
  const linesOf = new WeakMap<AnyIdentity, string[]>();

  const identityLines = (identity: AnyIdentity): string[] => {
    let lines = linesOf.get(identity);
    if (lines === undefined) {
      if (isProjectScoped(identity)) lines = impersonationHeaders(identity, impersonation);
      else {
        const groups = scopeGroups(identity, impersonation);
        if (groups === undefined) throw forbidden(scopeRefusal(identity));
        if (groups.length === 0) throw forbidden(unmappedRolesRefusal(identity, impersonation));
        lines = scopeImpersonationHeaders(identity, groups, impersonation);
      }
      linesOf.set(identity, lines);
    }
    return lines;
  };

  /**
   * Who is calling; with tenancy, their project namespace is in place before the first request goes upstream.
   * When the namespace cannot be the project's (taken by someone else, provisioning failing), requests into that
   * namespace get the reason; everything else (discovery, other namespaces) goes on to the apiserver's RBAC.
   * A cached token of a provisioned project is answered at once, without a promise.
   */
  const identify = (req: IncomingMessage, upgrade: boolean, rest: string): AnyIdentity | Promise<AnyIdentity> => {
    const found = authenticator.identify(extractToken(req.rawHeaders, { upgrade }));
    return found instanceof Promise ? found.then((identity) => admitted(identity, rest)) : admitted(found, rest);
  };

  const admitted = (identity: AnyIdentity, rest: string): AnyIdentity | Promise<AnyIdentity> => {
    if (!mapsScopes && !isProjectScoped(identity)) throw forbidden(scopeRefusal(identity));
    options.rateLimiter?.take(identity);
    identityLines(identity);
    if (tenancy === undefined || !isProjectScoped(identity)) return identity;
    const ready = tenancy.ensure(identity);
    if (typeof ready === 'string') return identity;
    return ready.then(
      () => identity,
      (err: unknown) => {
        if (!(err instanceof TenancyError) || targetsNamespace(upstreamPath(rest), tenancy.namespaceFor(identity))) throw err;
        return identity;
      },
    );
  };

  const outgoingHeaders = (req: IncomingMessage, identity: AnyIdentity, upgrade: boolean, path: string): string[] =>
    k8sRequestHeaders(req.rawHeaders, {
      hostHeader: k8s.upstream.hostHeader,
      authorization: k8s.authorization(),
      identityHeaders: identityLines(identity),
      upgrade,
      discovery: isDiscovery(path),
    });

  const startExchange = exchangeRecorder({ coe: 'k8s', logger, audit: options.audit, metrics: options.metrics });

  /** Who and what, for the audit trail: known once the caller is. */
  const describe = (exchange: Exchange, identity: AnyIdentity, path: string): void => {
    exchange.identity = identity;
    exchange.namespace = namespaceOf(path);
    exchange.longLived = isLongLived(path);
  };


  return {
    name: 'k8s',
    dialect,

    handleRequest(req: IncomingMessage, res: ServerResponse, { rest }: RequestTarget): void {
      const exchange = startExchange(req);
      exchange.observe(res);
      const path = upstreamPath(rest);
      // DOCKER_HOST=tcp://<gateway>/k8s: the apiserver would answer "cannot get path /v1.41/containers/json".
      const first = path.slice(1).split(/[/?]/, 1)[0] as string;
      if (isDockerApiRoot(first)) {
        exchange.refuseWith({ status: 404, message: `nothing at /k8s${path.split('?')[0] as string}: ${DOCKER_PREFIX_HINT}` }, (r) => sendError(res, dialect, r));
        return;
      }
      settle(
        () => identify(req, false, rest),
        (identity) => {
          describe(exchange, identity, path);
          if (exchange.longLived && isWatch(path)) options.onWatch?.(res);
          forwardRequest(req, res, {
            upstream: k8s.upstream,
            path,
            headers: outgoingHeaders(req, identity, false, path),
            bytes: exchange.bytes,
            longLived: exchange.longLived,
            onResponse: exchange.answered,
            onError: (err) => {
              exchange.upstreamFailed(err, sendError(res, dialect, reply(err)));
            },
          });
          exchange.sentUpstream();
        },
        (err) => exchange.refuseWith(reply(err), (r) => sendError(res, dialect, r), err),
      );
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, { rest }: RequestTarget): void {
      const exchange = startExchange(req);
      const hooks = exchange.observeUpgrade(socket);
      const path = upstreamPath(rest);
      settle(
        () => identify(req, true, rest),
        (identity) => {
          describe(exchange, identity, path);
          forwardUpgrade(req, socket, head, {
            upstream: k8s.upstream,
            path,
            headers: outgoingHeaders(req, identity, true, path),
            onError: (err) => {
              exchange.upstreamFailed(err, sendErrorOnSocket(socket, dialect, reply(err)));
            },
            ...hooks,
          });
          exchange.sentUpstream();
        },
        (err) => exchange.refuseWith(reply(err), (r) => sendErrorOnSocket(socket, dialect, r), err),
      );
    },

    async ready(): Promise<Readiness> {
      return new Promise((resolve) => {
        const auth = k8s.authorization();
        const headers = ['Host', k8s.upstream.hostHeader, ...(auth !== undefined ? ['Authorization', auth] : [])];
        const req = k8s.upstream.request({ ...k8s.upstream.requestOptions('GET', '/healthz', headers, false), timeout: 3000 });
        req.on('response', (res) => {
          res.resume();
          const ok = res.statusCode === 200;
          const refused = res.statusCode === 401 || res.statusCode === 403;
          resolve({
            ok,
            detail: ok ? 'apiserver healthy' : `apiserver answered HTTP ${res.statusCode}${refused ? " to the gateway's own credentials (k8s.kubeconfig)" : ''}`,
            ...(refused ? { blocking: true } : {}),
          });
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err) =>
          resolve({ ok: false, detail: `apiserver unreachable (${(err as NodeJS.ErrnoException).code ?? err.message})`, ...(isCertificateRefusal(err) ? { blocking: true } : {}) }),
        );
        req.end();
      });
    },

    async describe(identity: AnyIdentity): Promise<Record<string, unknown>> {
      if (!isProjectScoped(identity)) return { groups: scopeGroups(identity, impersonation) ?? [] };
      if (tenancy === undefined) return {};
      return { namespace: await tenancy.ensure(identity) };
    },

    close(): void {
      k8s.close();
    },
  };
}
