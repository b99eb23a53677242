import { LRUCache } from 'lru-cache';
import type { K8sUpstream } from './upstream.js';

/** How long what the apiserver serves is remembered: an upgraded apiserver is noticed within this. */
const REMEMBERED_MS = 10 * 60_000;

/**
 * Whether the apiserver serves a resource in an API group version (`selfsubjectreviews` in `authentication.k8s.io/v1`),
 * asked with the gateway's own credentials and remembered: the gateway answers what an old apiserver lacks
 * (SelfSubjectReview before 1.28) and forwards what a newer one has. The resource list decides, not the group version
 * alone: a 1.20 apiserver serves `authentication.k8s.io/v1` for TokenReview only. Unknown (the apiserver did not say)
 * counts as not served, and is asked again.
 */
export class ApiDiscovery {
  private readonly known = new LRUCache<string, { resources: ReadonlySet<string> }>({ max: 64, ttl: REMEMBERED_MS });

  constructor(private readonly k8s: K8sUpstream) {}

  async serves(groupVersion: string, resource: string): Promise<boolean> {
    return (await this.resourcesOf(groupVersion))?.has(resource) ?? false;
  }

  private async resourcesOf(groupVersion: string): Promise<ReadonlySet<string> | undefined> {
    const hit = this.known.get(groupVersion);
    if (hit !== undefined) return hit.resources;
    const auth = this.k8s.authorization();
    try {
      const res = await this.k8s.upstream.calls.request({
        method: 'GET',
        path: `${this.k8s.upstream.basePath}/apis/${groupVersion}`,
        headers: { host: this.k8s.upstream.hostHeader, accept: 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        if (res.statusCode !== 404) return undefined;
      }
      // An APIResourceList (its size bounded by the calls pool); a group version not served has no resources.
      const list = res.statusCode === 200 ? ((await res.body.json()) as { resources?: unknown } | null) : null;
      const entries: unknown[] = Array.isArray(list?.resources) ? list.resources : [];
      const resources = new Set(entries.map((r) => (r as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === 'string'));
      this.known.set(groupVersion, { resources });
      return resources;
    } catch {
      return undefined;
    }
  }
}
