import type { IncomingMessage, ServerResponse } from 'node:http';
import { RENEW_TOKEN, forbidden } from '../auth/errors.js';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { scopeRefusal } from '../auth/token-identity.js';
import type { ImpersonationConfig } from '../config/schema.js';
import { impersonationHeaders, scopeGroups, scopeImpersonationHeaders, unmappedRolesRefusal } from '../k8s/impersonation.js';
import { assertApiserverRequest } from '../k8s/outgoing-check.js';
import { isDiscovery, isLongLived, isWatch, namespaceOf } from '../k8s/request-kind.js';
import { k8sRequestHeaders } from '../k8s/request-headers.js';
import { statusBody } from '../k8s/status.js';
import { hasCode } from '../errors.js';
import type { K8sCluster, K8sClusters } from '../k8s/clusters.js';
import type { Signpost } from './mount.js';
import type { CoeSteps, Forwarding, OwnAnswer } from './pipeline.js';
import { readBody } from '../proxy/read-body.js';
import { assertMayUse, clusterRoute, clustersReadiness, describeClusters, unknownCluster, CLUSTERS_SEGMENT, type K8sRoute } from './k8s-clusters.js';
import { PROTOBUF_CONTENT_TYPE, accessReviewFromProtobuf } from '../k8s/access-review-protobuf.js';
import { namespaceNotFound, namespaceRead, namespaceReadReview, projectNamespacesPath, selfSubjectReview, selfSubjectReviewVersion } from '../k8s/tenant-views.js';
import type { ProjectRateLimiter } from './rate-limit.js';

export interface K8sMountOptions {
  /** The clusters of /k8s, each with its apiserver and (with k8s.tenancy) its provisioning. */
  readonly clusters: K8sClusters;
  readonly impersonation: ImpersonationConfig;
  readonly authUrl: string;
  /** Set when k8s.rateLimit is configured: every request and upgrade takes one from its project's bucket. */
  readonly rateLimiter?: ProjectRateLimiter;
  /** Told of every watch about to be forwarded (shutdown ends watches at once: their clients simply watch again). */
  readonly onWatch?: (res: ServerResponse) => void;
}

interface K8sPlan extends Forwarding {
  readonly cluster: K8sCluster;
  readonly identityLines: readonly string[];
  readonly watch: boolean;
  /** The gateway's own read on the tenant's behalf (the project's namespaces): sent without impersonation. */
  readonly asGateway?: boolean;
}

/** How much of a SelfSubjectAccessReview (`kubectl auth can-i`) the gateway reads to see what it asks. */
const MAX_REVIEW_BYTES = 64 * 1024;
const SELF_SUBJECT_ACCESS_REVIEW = /^\/apis\/authorization\.k8s\.io\/v1\/selfsubjectaccessreviews\/?(\?|$)/;

/** Kubernetes' API roots, its error dialect (Status objects, which kubectl prints) and the hint for a missed prefix. */
export const K8S_SIGNPOST: Signpost = {
  name: 'k8s',
  dialect: (reply) => ({ contentType: 'application/json', body: statusBody(reply.status, reply.message) }),
  isApiRoot: (s) => s === 'api' || s === 'apis' || s === 'openapi' || s === 'version' || s === CLUSTERS_SEGMENT,
  // kubectl keeps the server URL's path for every request except `get --raw` (invariants.md 28). The cluster a raw
  // path missed is not known here, and names are not told to callers not yet known: the form is.
  prefixHint:
    "Kubernetes API paths are under /k8s on this gateway: a kubeconfig's server must end in /k8s, or in /k8s/clusters/<name> for one of its clusters (server: https://<gateway>/k8s/clusters/<name>); `kubectl get --raw` does not add the server's path, so give it whole, as the server URL of your kubeconfig's context has it: kubectl get --raw /k8s/api/... or kubectl get --raw /k8s/clusters/<name>/api/...",
};

/** `/k8s/*`: every request forwarded verbatim to the apiserver as the caller (impersonation). */
/**
 * `kubectl auth can-i get|list|watch namespaces`: yes, the gateway lists the project's namespaces, and no for another
 * namespace by name (tenant-views.ts); any other review goes on to the apiserver with the body as it was read.
 */
async function canI(req: IncomingMessage, plan: K8sPlan, own: string): Promise<K8sPlan | OwnAnswer> {
  const body = await readBody(req, MAX_REVIEW_BYTES, req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined);
  let review: unknown;
  // kubectl 1.32+ asks in protobuf (and accepts JSON back); older clients in JSON.
  if ((req.headers['content-type'] ?? '').startsWith(PROTOBUF_CONTENT_TYPE)) review = accessReviewFromProtobuf(body);
  else {
    try {
      review = JSON.parse(body.toString('utf8'));
    } catch {
      return { ...plan, body };
    }
  }
  const allowed = namespaceReadReview(review, own);
  if (allowed === undefined) return { ...plan, body };
  const spec = (review as { spec: unknown }).spec;
  const reason = allowed ? "zun-gateway lists the namespaces of the caller's project" : "zun-gateway shows the caller's project's namespaces only";
  return { answer: { status: 201, body: { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status: { allowed, reason } } } };
}

/** A route with what its path says, read once: the audit's facts and the admission both need them. */
interface K8sRequest extends K8sRoute {
  readonly longLived: boolean;
  readonly namespace: string | undefined;
}

export function k8sSteps(options: K8sMountOptions): CoeSteps<K8sRequest, AnyIdentity, K8sPlan> {
  const { clusters, impersonation } = options;
  const mount = K8S_SIGNPOST.name;
  const mapsScopes = impersonation.domainScopeGroups !== undefined || impersonation.systemScopeGroups !== undefined;
  // Identities come from the token cache as the same objects: their impersonation lines are computed once (frozen: the
  // final check judges a frozen list's form once, k8s/outgoing-check.ts).
  const linesOf = new WeakMap<AnyIdentity, readonly string[]>();
  const identityLines = (identity: AnyIdentity): readonly string[] => {
    let lines = linesOf.get(identity);
    if (lines === undefined) {
      if (isProjectScoped(identity)) lines = impersonationHeaders(identity, impersonation);
      else {
        const groups = scopeGroups(identity, impersonation);
        if (groups === undefined) throw forbidden(scopeRefusal(identity));
        if (groups.length === 0) throw forbidden(unmappedRolesRefusal(identity, impersonation));
        lines = scopeImpersonationHeaders(identity, groups, impersonation);
      }
      lines = Object.freeze(lines);
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

    route: (_req, target) => {
      const { cluster, asked, path } = clusterRoute(target, clusters);
      return { cluster, asked, path, longLived: isLongLived(path), namespace: namespaceOf(path) };
    },
    facts: ({ cluster, namespace, longLived }) => ({ namespace, longLived, cluster: cluster?.name }),

    /**
     * The cluster (404 naming those the caller may use when there is none of that name; 403 when the project lacks the
     * tag that opens it), the caller's impersonation (403 when it cannot be expressed), and with tenancy their project
     * namespace in place on that cluster before the first request goes upstream there. When the namespace cannot be the project's (taken, provisioning
     * failing), requests into it get the reason; everything else (discovery, other namespaces) goes on to RBAC. A
     * cached token of a provisioned project is admitted at once, without a promise.
     */
    admit({ req, route: { cluster, asked, path, longLived, namespace }, identity }) {
      if (cluster === undefined) throw unknownCluster(mount, asked, clusters.usableBy(identity));
      assertMayUse(cluster, identity, clusters);
      const { tenancy, discovery } = cluster;
      const method = req.method ?? 'GET';
      const lines = identityLines(identity);
      const plan: K8sPlan = { cluster, upstream: cluster.apiserver.upstream, path, longLived, watch: longLived && isWatch(path), identityLines: lines };
      // `kubectl auth whoami`: answered as the apiserver would for the impersonated identity where it has no such API.
      const whoami = selfSubjectReviewVersion(method, path);
      if (whoami !== undefined) {
        return discovery.serves(`authentication.k8s.io/${whoami}`, 'selfsubjectreviews').then((served): K8sPlan | OwnAnswer => (served ? plan : { answer: selfSubjectReview(whoami, lines) }));
      }
      if (tenancy === undefined || !isProjectScoped(identity)) return plan;
      const own = tenancy.namespaceFor(identity);
      const view = projectNamespacesPath(method, path, identity.project.id);
      const named = namespaceRead(method, path);
      const ready = tenancy.ensure(identity);
      const admitted = (): K8sPlan | OwnAnswer | Promise<K8sPlan | OwnAnswer> => {
        if (view !== undefined) return { ...plan, path: view, asGateway: true };
        // Another namespace looks missing, as on a cluster of the project's own.
        if (named !== undefined && named !== own) return { answer: namespaceNotFound(named) };
        if (method === 'POST' && SELF_SUBJECT_ACCESS_REVIEW.test(path)) return canI(req, plan, own);
        return plan;
      };
      if (typeof ready === 'string') return admitted();
      return ready.then(admitted, (err: unknown) => {
        if (!hasCode(err, 'namespace_unavailable') || namespace === own) throw err;
        return admitted();
      });
    },

    headers: ({ req, socket }, plan) =>
      k8sRequestHeaders(req.rawHeaders, {
        hostHeader: plan.upstream.hostHeader,
        authorization: plan.cluster.apiserver.authorization(),
        identityHeaders: plan.asGateway === true ? [] : plan.identityLines,
        upgrade: socket !== undefined,
        discovery: isDiscovery(plan.path),
      }),

    check: (headers, _call, plan) =>
      assertApiserverRequest(headers, { identityLines: plan.identityLines, authorization: plan.cluster.apiserver.authorization(), ...(plan.asGateway === true ? { asGateway: true } : {}) }),

    /** A JSON watch the gateway ends tells the watcher why, as the apiserver ends one: an ERROR event with a Status. */
    lastWords: (plan, reason, contentType) =>
      plan.watch && contentType.includes('json')
        ? `${JSON.stringify({ type: 'ERROR', object: JSON.parse(statusBody(401, `session ended: token ${reason}; ${RENEW_TOKEN}`)) as unknown })}\n`
        : undefined,

    forwarded: ({ res }, plan) => {
      if (plan.watch && res !== undefined) options.onWatch?.(res);
    },

    ready: () => clustersReadiness(clusters),

    /**
     * The clusters the caller may use, with their server URLs and (with tenancy) namespaces, the first one's namespace
     * also on its own; nothing is provisioned by asking.
     */
    describe(identity, base) {
      const listed = describeClusters(mount, clusters, identity, base);
      if (!isProjectScoped(identity)) return Promise.resolve({ groups: scopeGroups(identity, impersonation) ?? [], clusters: listed });
      const namespace = listed[0]?.namespace;
      return Promise.resolve({ ...(namespace !== undefined ? { namespace } : {}), clusters: listed });
    },

    close: () => clusters.close(),
  };
}
