import { isProjectScoped, type AnyIdentity } from '../auth/identity.js';
import type { ImpersonationConfig, K8sConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { ApiDiscovery } from './api-discovery.js';
import { apiserverHealth, type ApiserverHealth } from './health.js';
import { TenantProvisioner, tenancyApis } from './tenancy.js';
import { loadK8sUpstream, type K8sUpstream } from './upstream.js';

/** One Kubernetes cluster behind the gateway: its apiserver, its tenancy, what it serves, and who may use it. */
export interface K8sCluster {
  /** A DNS-1123 label, unique among the clusters (`default` for the one of a single-cluster configuration). */
  readonly name: string;
  /** Where its settings are in the configuration (`k8s`, `k8s.clusters[1]`), for messages. */
  readonly configKey: string;
  readonly apiserver: K8sUpstream;
  /** Set when project namespaces are provisioned on this cluster. */
  readonly tenancy?: TenantProvisioner;
  readonly discovery: ApiDiscovery;
  /** Only projects carrying one of these Keystone tags may use the cluster; undefined: every project. */
  readonly projectTags?: readonly string[];
}

/**
 * Whether the caller may use the cluster: one with projectTags is for projects carrying one of them, and so for no
 * token without a project (domain or system scope). Fails closed when the project's tags were not read.
 */
export function mayUse(cluster: K8sCluster, identity: AnyIdentity): boolean {
  const wanted = cluster.projectTags;
  if (wanted === undefined) return true;
  if (!isProjectScoped(identity)) return false;
  return (identity.project.tags ?? []).some((tag) => wanted.includes(tag));
}

/** Why the caller may not use the cluster (a 403's message), and where to turn. */
export function tagRefusal(cluster: K8sCluster, identity: AnyIdentity, usable: readonly string[]): string {
  const tags = cluster.projectTags ?? [];
  const wanted = tags.length === 1 ? `the tag ${tags[0]}` : `one of the tags ${tags.join(', ')}`;
  const who = isProjectScoped(identity) ? `project ${identity.project.name} has no such tag` : `a ${identity.scope}-scoped token has no project`;
  const elsewhere = usable.length > 0 ? `, or use a cluster open to you: ${usable.join(', ')}` : '';
  const ask = isProjectScoped(identity) ? `ask a cloud administrator to tag the project (openstack project set --tag ${tags[0] ?? ''} ${identity.project.name})` : 'use a project-scoped token of a tagged project';
  return `cluster ${cluster.name} is open only to Keystone projects carrying ${wanted}; ${who}: ${ask}${elsewhere}`;
}

/**
 * The clusters of /k8s, in configuration order: the first is also served at /k8s itself (today's kubeconfigs keep
 * working), each at /k8s/clusters/<name>.
 */
export class K8sClusters {
  private readonly byName: ReadonlyMap<string, K8sCluster>;

  constructor(readonly all: readonly [K8sCluster, ...K8sCluster[]]) {
    this.byName = new Map(all.map((c) => [c.name, c]));
  }

  get first(): K8sCluster {
    return this.all[0];
  }

  /** More than one cluster is configured (each is then addressed by name). */
  get several(): boolean {
    return this.all.length > 1;
  }

  named(name: string): K8sCluster | undefined {
    return this.byName.get(name);
  }

  /** The clusters this caller may use, in configuration order. */
  usableBy(identity: AnyIdentity): K8sCluster[] {
    return this.all.filter((c) => mayUse(c, identity));
  }

  /** Each cluster's apiserver, asked at once. */
  async health(): Promise<Array<{ cluster: K8sCluster; health: ApiserverHealth }>> {
    return Promise.all(this.all.map(async (cluster) => ({ cluster, health: await apiserverHealth(cluster.apiserver, cluster.configKey) })));
  }

  close(): void {
    for (const c of this.all) c.apiserver.close();
  }
}

export interface ClusterDependencies {
  readonly impersonation: ImpersonationConfig;
  readonly logger: Logger;
  /** Told of each tenancy action on a cluster (the provisioning metric). */
  readonly onProvision?: (cluster: string, action: string, outcome: 'ok' | 'error') => void;
}

/** Every configured cluster, its kubeconfig loaded; a cluster that cannot be loaded stops the start (config_invalid). */
export async function loadK8sClusters(config: K8sConfig, deps: ClusterDependencies): Promise<K8sClusters> {
  const loaded: K8sCluster[] = [];
  try {
    for (const c of config.clusters) {
      const apiserver = await loadK8sUpstream(c);
      const onAction = (action: string, outcome: 'ok' | 'error' = 'ok'): void => deps.onProvision?.(c.name, action, outcome);
      loaded.push({
        name: c.name,
        configKey: c.configKey,
        apiserver,
        discovery: new ApiDiscovery(apiserver),
        ...(c.tenancy !== undefined ? { tenancy: new TenantProvisioner(tenancyApis(apiserver.kubeConfig), c.tenancy, deps.impersonation, deps.logger, onAction) } : {}),
        ...(c.projectTags !== undefined ? { projectTags: c.projectTags } : {}),
      });
    }
  } catch (err) {
    for (const c of loaded) c.apiserver.close();
    throw err;
  }
  return new K8sClusters(loaded as [K8sCluster, ...K8sCluster[]]);
}
