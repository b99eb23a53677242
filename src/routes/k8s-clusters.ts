import { forbidden } from '../auth/errors.js';
import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import { GatewayError } from '../errors.js';
import { mayUse, tagRefusal, type K8sCluster, type K8sClusters } from '../k8s/clusters.js';
import { upstreamPath, type Readiness } from './mount.js';
import type { RequestTarget } from './path.js';

/**
 * Several clusters behind the one /k8s mount: `/k8s/clusters/<name>/...` is the cluster of that name, `/k8s/...` the
 * first one (so kubeconfigs made for a single cluster keep working). What follows the cluster goes to its apiserver
 * as `/k8s/...` goes today.
 */

/** The segment that introduces a cluster's name below the mount: /k8s/clusters/<name>. */
export const CLUSTERS_SEGMENT = 'clusters';

/** What a /k8s request is for: which cluster, and the path for its apiserver. */
export interface K8sRoute {
  /** The cluster addressed; undefined when no cluster has the name asked (answered once the caller is known). */
  readonly cluster: K8sCluster | undefined;
  /** The name as asked, decoded ('' when none was given), for the answer about an unknown one. */
  readonly asked: string;
  /** Path and query below the apiserver's base path. */
  readonly path: string;
}

/** The cluster and apiserver path a request target names (`target.segments[0]` is the mount's own). */
export function clusterRoute(target: RequestTarget, clusters: K8sClusters): K8sRoute {
  if (target.segments[1] !== CLUSTERS_SEGMENT) return { cluster: clusters.first, asked: clusters.first.name, path: upstreamPath(target.rest) };
  // rest is raw: `/clusters/<raw name>[/more][?query]`; the name is looked up decoded, the rest passed on as sent.
  const afterSegment = target.rest.slice(1 + CLUSTERS_SEGMENT.length);
  const asked = target.segments[2] ?? '';
  if (!afterSegment.startsWith('/') || asked === '') return { cluster: undefined, asked: '', path: '/' };
  const rawName = /^[^/?]*/.exec(afterSegment.slice(1))?.[0] ?? '';
  return { cluster: clusters.named(asked), asked, path: upstreamPath(afterSegment.slice(1 + rawName.length)) };
}

/** Where a cluster is served below the gateway's root: /k8s for the one cluster of a gateway with one. */
export function clusterPath(mount: string, clusters: K8sClusters, cluster: K8sCluster): string {
  return clusters.several ? `/${mount}/${CLUSTERS_SEGMENT}/${cluster.name}` : `/${mount}`;
}

/** The 404 for a cluster name this gateway does not have, naming those the caller may use (and no others). */
export function unknownCluster(mount: string, asked: string, usable: readonly K8sCluster[]): GatewayError {
  const what = asked === '' ? `name a cluster: /${mount}/${CLUSTERS_SEGMENT}/<name>` : `this gateway has no cluster named ${asked.slice(0, 64)}`;
  const open =
    usable.length > 0
      ? `the clusters you may use: ${usable.map((c) => `${c.name} (/${mount}/${CLUSTERS_SEGMENT}/${c.name})`).join(', ')}`
      : 'you may use none of its clusters: ask a cloud administrator which Keystone project tags open them';
  return new GatewayError('not_found', `${what}; ${open}`);
}

/**
 * The caller may use the cluster, or a 403 saying which project tag opens it. Checked before anything else happens
 * there: nothing is provisioned on a cluster the project may not use.
 */
export function assertMayUse(cluster: K8sCluster, identity: AnyIdentity, clusters: K8sClusters): void {
  if (mayUse(cluster, identity)) return;
  throw forbidden(tagRefusal(cluster, identity, clusters.usableBy(identity).map((c) => c.name)));
}

/** /whoami: the clusters the caller may use, their server URLs (below `base`, the gateway as the caller reached it), and namespaces. */
export function describeClusters(mount: string, clusters: K8sClusters, identity: AnyIdentity, base: string): Array<Record<string, string>> {
  return clusters.usableBy(identity).map((c) => ({
    name: c.name,
    server: `${base}${clusterPath(mount, clusters, c)}`,
    ...(c.tenancy !== undefined && isProjectScoped(identity) ? { namespace: c.tenancy.namespaceFor(identity) } : {}),
  }));
}

/**
 * Readiness of every cluster's apiserver. One cluster: its check as it is. Several: ready when all are, blocking
 * when any refuses the gateway's own credentials, each cluster's check under `upstreams`.
 */
export async function clustersReadiness(clusters: K8sClusters): Promise<Readiness> {
  const results = await clusters.health();
  if (!clusters.several) return (results[0] as (typeof results)[number]).health;
  const failing = results.filter((r) => !r.health.ok);
  return {
    ok: failing.length === 0,
    detail: failing.length === 0 ? `all ${results.length} apiservers healthy` : failing.map((r) => `cluster ${r.cluster.name}: ${r.health.detail}`).join('; '),
    ...(results.some((r) => r.health.blocking === true) ? { blocking: true } : {}),
    upstreams: Object.fromEntries(results.map((r) => [r.cluster.name, r.health])),
  };
}
