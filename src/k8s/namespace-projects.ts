import { ApiException, type CoreV1Api } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import type { NamespaceProject } from './rolebinding-review.js';
import { PROJECT_LABEL } from './tenancy.js';

/**
 * Said of a namespace that is missing, unlabelled or unreadable alike: the webhook answers whoever reaches the port,
 * which must not learn which namespaces exist (review 2026-12-07: three answers told missing, unlabelled and owned apart).
 */
const UNKNOWN = 'the gateway could not read which project the namespace belongs to';

/** A namespace's owner is its ownership label, set at creation and never moved to another project: remembered this long. */
const REMEMBER_MS = 5 * 60_000;
/**
 * Reads at the apiserver at once. The webhook path needs no credentials, so whoever reaches the port could make the
 * gateway read namespaces: beyond this many, a review is answered without the owner (project groups count as foreign:
 * the RoleBinding is refused and the apiserver's caller may retry) rather than queued.
 */
const MAX_IN_FLIGHT = 8;

/**
 * Which Keystone project owns a namespace, read from the namespace's ownership label with the gateway's own
 * credentials (`get namespaces`, which provisioning needs anyway). The admission review names the namespace only.
 * Failures are answered as "unknown" (the RoleBinding rule then treats every project group as foreign) and not
 * remembered.
 */
export class NamespaceProjects {
  private readonly known: LRUCache<string, { projectId: string }>;
  private readonly pending = new Map<string, Promise<NamespaceProject>>();

  constructor(
    private readonly apis: { readonly core: CoreV1Api },
    rememberMs = REMEMBER_MS,
    private readonly maxInFlight = MAX_IN_FLIGHT,
    private readonly onReadFailure?: (err: unknown) => void,
  ) {
    this.known = new LRUCache({ max: 10_000, ttl: rememberMs });
  }

  projectOf(namespace: string): Promise<NamespaceProject> {
    const hit = this.known.get(namespace);
    if (hit !== undefined) return Promise.resolve(hit);
    const joined = this.pending.get(namespace);
    if (joined !== undefined) return joined;
    if (this.pending.size >= this.maxInFlight) {
      return Promise.resolve({ unknown: `the gateway is reading ${this.pending.size} namespaces already; retry shortly` });
    }
    const read = this.read(namespace).finally(() => this.pending.delete(namespace));
    this.pending.set(namespace, read);
    return read;
  }

  private async read(namespace: string): Promise<NamespaceProject> {
    try {
      const ns = await this.apis.core.readNamespace({ name: namespace });
      const projectId = ns.metadata?.labels?.[PROJECT_LABEL];
      if (projectId === undefined || projectId === '') return { unknown: UNKNOWN };
      const found = { projectId };
      this.known.set(namespace, found);
      return found;
    } catch (err) {
      // A read the apiserver refused is worth the operator's eye; the caller learns no more than for an unlabelled one.
      if (!(err instanceof ApiException) || err.code !== 404) this.onReadFailure?.(err);
      return { unknown: UNKNOWN };
    }
  }
}
