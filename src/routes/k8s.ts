import type { ServerResponse } from 'node:http';
import { forbidden } from '../auth/errors.js';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { scopeRefusal } from '../auth/token-identity.js';
import type { ImpersonationConfig } from '../config/schema.js';
import { apiserverHealth } from '../k8s/health.js';
import { impersonationHeaders, scopeGroups, scopeImpersonationHeaders, unmappedRolesRefusal } from '../k8s/impersonation.js';
import { assertApiserverRequest } from '../k8s/outgoing-check.js';
import { isDiscovery, isLongLived, isWatch, namespaceOf } from '../k8s/request-kind.js';
import { k8sRequestHeaders } from '../k8s/request-headers.js';
import { statusBody } from '../k8s/status.js';
import { hasCode } from '../errors.js';
import { targetsNamespace, type TenantProvisioner } from '../k8s/tenancy.js';
import type { K8sUpstream } from '../k8s/upstream.js';
import { upstreamPath, type Signpost } from './mount.js';
import type { CoeSteps, Forwarding } from './pipeline.js';
import type { ProjectRateLimiter } from './rate-limit.js';

export interface K8sMountOptions {
  readonly k8s: K8sUpstream;
  readonly impersonation: ImpersonationConfig;
  /** Set when project namespaces are provisioned (k8s.tenancy). */
  readonly tenancy?: TenantProvisioner;
  readonly authUrl: string;
  /** Set when k8s.rateLimit is configured: every request and upgrade takes one from its project's bucket. */
  readonly rateLimiter?: ProjectRateLimiter;
  /** Told of every watch about to be forwarded (shutdown ends watches at once: their clients simply watch again). */
  readonly onWatch?: (res: ServerResponse) => void;
}

interface K8sPlan extends Forwarding {
  readonly identityLines: readonly string[];
  readonly watch: boolean;
}

/** Kubernetes' API roots, its error dialect (Status objects, which kubectl prints) and the hint for a missed prefix. */
export const K8S_SIGNPOST: Signpost = {
  name: 'k8s',
  dialect: (reply) => ({ contentType: 'application/json', body: statusBody(reply.status, reply.message) }),
  isApiRoot: (s) => s === 'api' || s === 'apis' || s === 'openapi' || s === 'version',
  // kubectl keeps the server URL's path for every request except `get --raw` (invariants.md 28).
  prefixHint:
    "Kubernetes API paths are under /k8s on this gateway: a kubeconfig's server must end in /k8s (server: https://<gateway>/k8s); `kubectl get --raw` does not add the server's path, so give it whole: kubectl get --raw /k8s/api/...",
};

/** `/k8s/*`: every request forwarded verbatim to the apiserver as the caller (impersonation). */
export function k8sSteps(options: K8sMountOptions): CoeSteps<string, AnyIdentity, K8sPlan> {
  const { k8s, impersonation, tenancy } = options;
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

  return {
    ...K8S_SIGNPOST,
    verbatim: true,
    credentials: { webSocketToken: true, scopes: mapsScopes ? 'any' : 'project' },
    authUrl: options.authUrl,
    ...(options.rateLimiter !== undefined ? { rateLimiter: options.rateLimiter } : {}),

    route: (_req, target) => upstreamPath(target.rest),
    facts: (path) => ({ namespace: namespaceOf(path), longLived: isLongLived(path) }),

    /**
     * The caller's impersonation (403 when it cannot be expressed), and with tenancy their project namespace in place
     * before the first request goes upstream. When the namespace cannot be the project's (taken, provisioning
     * failing), requests into it get the reason; everything else (discovery, other namespaces) goes on to RBAC. A
     * cached token of a provisioned project is admitted at once, without a promise.
     */
    admit({ route: path, identity }) {
      const longLived = isLongLived(path);
      const plan: K8sPlan = { upstream: k8s.upstream, path, longLived, watch: longLived && isWatch(path), identityLines: identityLines(identity) };
      if (tenancy === undefined || !isProjectScoped(identity)) return plan;
      const ready = tenancy.ensure(identity);
      if (typeof ready === 'string') return plan;
      return ready.then(
        () => plan,
        (err: unknown) => {
          if (!hasCode(err, 'namespace_unavailable') || targetsNamespace(path, tenancy.namespaceFor(identity))) throw err;
          return plan;
        },
      );
    },

    headers: ({ req, socket }, plan) =>
      k8sRequestHeaders(req.rawHeaders, {
        hostHeader: k8s.upstream.hostHeader,
        authorization: k8s.authorization(),
        identityHeaders: plan.identityLines,
        upgrade: socket !== undefined,
        discovery: isDiscovery(plan.path),
      }),

    check: (headers, _call, plan) => assertApiserverRequest(headers, { identityLines: plan.identityLines, authorization: k8s.authorization() }),

    forwarded: ({ res }, plan) => {
      if (plan.watch && res !== undefined) options.onWatch?.(res);
    },

    ready: () => apiserverHealth(k8s),

    async describe(identity) {
      if (!isProjectScoped(identity)) return { groups: scopeGroups(identity, impersonation) ?? [] };
      if (tenancy === undefined) return {};
      return { namespace: await tenancy.ensure(identity) };
    },

    close: () => k8s.close(),
  };
}
