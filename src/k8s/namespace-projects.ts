import { ApiException, type CoreV1Api } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import type { NamespaceProject } from './rolebinding-review.js';
import { PROJECT_LABEL } from './tenancy.js';

/** A namespace's owner is its ownership label, set at creation and never moved to another project: remembered this long. */
const REMEMBER_MS = 5 * 60_000;

/**
 * Which Keystone project owns a namespace, read from the namespace's ownership label with the gateway's own
 * credentials (`get namespaces`, which provisioning needs anyway). The admission review names the namespace only.
 * Failures are answered as "unknown" (the RoleBinding rule then treats every project group as foreign) and not
 * remembered.
 */
export class NamespaceProjects {
  private readonly known: LRUCache<string, { projectId: string }>;

  constructor(
    private readonly apis: { readonly core: CoreV1Api },
    rememberMs = REMEMBER_MS,
  ) {
    this.known = new LRUCache({ max: 10_000, ttl: rememberMs });
  }

  async projectOf(namespace: string): Promise<NamespaceProject> {
    const hit = this.known.get(namespace);
    if (hit !== undefined) return hit;
    try {
      const ns = await this.apis.core.readNamespace({ name: namespace });
      const projectId = ns.metadata?.labels?.[PROJECT_LABEL];
      if (projectId === undefined || projectId === '') return { unknown: `namespace ${namespace} has no ${PROJECT_LABEL} label` };
      const found = { projectId };
      this.known.set(namespace, found);
      return found;
    } catch (err) {
      const code = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
      return { unknown: `the gateway could not read namespace ${namespace}${code}` };
    }
  }
}
