import { isDigest, parseImageReference } from '../config/image-reference.js';
import type { Container, Pod } from './pod-security.js';
import { answerReview, podOf, readReview, refuseUnexpectedResource, resourceOf, type AdmissionDecision, type JsonPatchOperation, type ReviewedPod } from './admission-review.js';

/**
 * The AlwaysPullImages behaviour for project namespaces. A node caches the images its pods pulled, for everyone: with
 * `IfNotPresent` (or `Never`) a second project's pod runs a first project's private image from that cache without any
 * credentials (invariants.md 31). `Always` makes the kubelet ask the registry with this pod's own pull secrets every
 * time (a cached layer is not downloaded again, only the manifest is checked). Images the operator preloads on the
 * nodes for everyone (`k8s.tenancy.sharedImages`) keep the pod's own policy. Pure.
 */

/** The images of `k8s.tenancy.sharedImages`, by reference (`busybox` = `docker.io/library/busybox:latest`) or digest. */
export class SharedImages {
  private readonly references = new Set<string>();
  private readonly digests = new Set<string>();

  /** Throws on an entry no runtime would accept (the configuration schema refuses those before). */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      if (isDigest(entry)) {
        this.digests.add(entry);
        continue;
      }
      const ref = parseImageReference(entry);
      if (ref === undefined) throw new Error(`k8s.tenancy.sharedImages: ${JSON.stringify(entry)} is not an image reference`);
      this.references.add(ref.canonical);
    }
  }

  /**
   * Whether a pod's image is one of them: the same reference once both are written in full, or (for an image named
   * with a digest) the same digest. A tag never matches an image named by digest: the digest may be anything.
   */
  has(image: string | undefined): boolean {
    const ref = image === undefined ? undefined : parseImageReference(image);
    if (ref === undefined) return false;
    return this.references.has(ref.canonical) || (ref.digest !== undefined && this.digests.has(ref.digest));
  }
}

const LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
type ListName = (typeof LISTS)[number];

/** A container that would run from a node's cache: not `Always`, and an image that is not shared. */
export interface CachedImageUse {
  readonly list: ListName;
  readonly index: number;
  readonly name: string;
  readonly image: string;
  /** The policy it has (`IfNotPresent`, `Never`, or `unset` when the apiserver's defaulting has not run). */
  readonly policy: string;
}

function sameImages(pod: Pod, list: ListName): Map<string, string | undefined> {
  return new Map((pod.spec[list] ?? []).map((c: Container) => [c.name, c.image]));
}

/**
 * The containers of the pod that would run a non-shared image without pulling it. On an update only containers that
 * are new or change their image count: what was admitted before is not judged again (ephemeral containers are added
 * by an update; pods that predate the webhook can still be managed).
 */
export function cachedImageUses(pod: Pod, shared: SharedImages, old?: Pod): CachedImageUse[] {
  return LISTS.flatMap((list) => {
    const before = old === undefined ? undefined : sameImages(old, list);
    return (pod.spec[list] ?? []).flatMap((c: Container, index: number): CachedImageUse[] => {
      if (c.imagePullPolicy === 'Always' || shared.has(c.image)) return [];
      if (before !== undefined && before.has(c.name) && before.get(c.name) === c.image) return [];
      return [{ list, index, name: c.name, image: c.image ?? '', policy: c.imagePullPolicy ?? 'unset' }];
    });
  });
}

/** `add` replaces a member that exists, so one operation sets the policy whether or not the pod named one. */
export function alwaysPullPatch(uses: readonly CachedImageUse[], layout: ReviewedPod['layout']): JsonPatchOperation[] {
  return uses.map((u) => ({
    op: 'add',
    path: layout === 'ephemeralContainers' ? `/ephemeralContainers/${u.index}/imagePullPolicy` : `/spec/${u.list}/${u.index}/imagePullPolicy`,
    value: 'Always',
  }));
}

export const where = (u: CachedImageUse): string => `spec.${u.list}[${u.index}] "${u.name}"`;

/** Why the validating webhook refuses a pod the mutating one did not change (it is not registered, or was undone). */
export function describeCachedImageUses(podName: string, uses: readonly CachedImageUse[], update: boolean): string {
  const fields = uses.map((u) => `${where(u)} image ${JSON.stringify(u.image)} imagePullPolicy=${u.policy}`).join(', ');
  const fix = update
    ? 'imagePullPolicy cannot change on an update: delete the pod and create it again (the webhook then sets Always)'
    : "set imagePullPolicy: Always (the gateway's mutating webhook sets it by itself once registered: ask the operator; README \"Pods without the Helm chart\")";
  return (
    `pod ${JSON.stringify(podName)} would run images from the node's cache without asking their registry (${fields}): ` +
    "in this cluster's project namespaces every image not shared by the operator (k8s.tenancy.sharedImages) is pulled with the pod's own " +
    `credentials, so that no project runs another's private image; ${fix}`
  );
}

/**
 * The mutating webhook's decision: a pod created in a project namespace, or ephemeral containers added to one, get
 * `imagePullPolicy: Always` (a JSONPatch) on every container whose image is not shared. A pod update is never patched:
 * the apiserver forbids changing imagePullPolicy on one, so the validating webhook judges it instead. `shared`
 * undefined (alwaysPullImages off): everything passes unchanged.
 */
export function reviewImagePull(body: unknown, shared: SharedImages | undefined): AdmissionDecision {
  const request = readReview(body);
  const resource = resourceOf(request);
  const unchanged = (name: string | undefined): AdmissionDecision => answerReview(request, { allowed: true, name, checks: [], logMessage: 'pod admitted unchanged' });
  if (resource !== 'pods' && resource !== 'pods/ephemeralcontainers') {
    return refuseUnexpectedResource(request, resource, {
      handles: "the gateway's image pull webhook changes only pods and pods/ephemeralcontainers",
      configuration: 'MutatingWebhookConfiguration',
    });
  }
  const isPodUpdate = request.operation === 'UPDATE' && resource === 'pods';
  if (shared === undefined || isPodUpdate || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return unchanged(request.name);
  const reviewed = podOf(request, 'object');
  if (typeof reviewed === 'string') {
    return answerReview(request, {
      allowed: false,
      name: request.name,
      checks: ['unreadable'],
      message: `the gateway could not read this pod to set its imagePullPolicy, so it is refused: ${reviewed}`,
      logMessage: 'pod refused (unreadable)',
    });
  }
  const name = reviewed.pod.metadata?.name ?? request.name ?? reviewed.pod.metadata?.generateName ?? '';
  const old = request.operation === 'UPDATE' ? podOf(request, 'oldObject') : undefined;
  const uses = cachedImageUses(reviewed.pod, shared, old !== undefined && typeof old !== 'string' ? old.pod : undefined);
  if (uses.length === 0) return unchanged(name);
  return answerReview(request, {
    allowed: true,
    name,
    checks: [],
    patch: alwaysPullPatch(uses, reviewed.layout),
    patched: uses.map(where),
    logMessage: 'pod imagePullPolicy set to Always',
  });
}
