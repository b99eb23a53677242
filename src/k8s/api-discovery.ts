import { LRUCache } from 'lru-cache';
import type { K8sUpstream } from './upstream.js';

/** How long what the apiserver serves is remembered: an upgraded apiserver is noticed within this. */
const REMEMBERED_MS = 10 * 60_000;

/**
 * Whether the apiserver serves an API group version (`authentication.k8s.io/v1`), asked with the gateway's own
 * credentials and remembered: the gateway answers what an old apiserver lacks (SelfSubjectReview before 1.28) and
 * forwards what a newer one has. Unknown (the apiserver did not say) counts as not served, and is asked again.
 */
export class ApiDiscovery {
  private readonly known = new LRUCache<string, { served: boolean }>({ max: 64, ttl: REMEMBERED_MS });

  constructor(private readonly k8s: K8sUpstream) {}

  async serves(groupVersion: string): Promise<boolean> {
    const hit = this.known.get(groupVersion);
    if (hit !== undefined) return hit.served;
    const auth = this.k8s.authorization();
    try {
      const res = await this.k8s.upstream.calls.request({
        method: 'GET',
        path: `${this.k8s.upstream.basePath}/apis/${groupVersion}`,
        headers: { host: this.k8s.upstream.hostHeader, accept: 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 404) this.known.set(groupVersion, { served: res.statusCode === 200 });
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }
}
