import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { answerReview, firstIssue, podOf, readReview, refuseUnexpectedResource, resourceOf, type AdmissionDecision, type ReviewRequest } from './admission-review.js';
import { cachedImageUses, describeCachedImageUses, type SharedImages } from './image-pull-policy.js';
import { describeViolations, podSecurityViolations, type Pod, type PodSecurityLevel } from './pod-security.js';
import {
  describeRefusedSubjects,
  refusedSubjects,
  roleBindingSchema,
  type BindingSubjectPolicy,
  type NamespaceProject,
} from './rolebinding-review.js';
import { describeSubPathMounts, subPathMounts, type SubPathRule } from './subpath.js';

/**
 * The decision of the gateway's validating admission webhook (admission.k8s.io/v1 AdmissionReview in, AdmissionReview
 * out) for pods, Services and RoleBindings in project namespaces. Everything it cannot read is refused: a review
 * without a uid cannot be answered at all (a `review_invalid` error: the HTTP call fails, and the webhook's
 * failurePolicy Fail refuses the object); a review whose object it cannot read is answered allowed=false with the reason.
 */

export type { AdmissionDecision } from './admission-review.js';

/** What the webhook enforces; built from `k8s.tenancy` (and, for subPath, the apiserver's version at the time). */
export interface AdmissionPolicy {
  readonly level: PodSecurityLevel;
  /** `k8s.tenancy.alwaysPullImages`: the images exempt from it; undefined when it is off. */
  readonly alwaysPull?: SharedImages | undefined;
  readonly subPath: SubPathRule;
  readonly bindings: BindingSubjectPolicy;
}

const SECURITY_ANNOTATION = /^(container\.apparmor\.security\.beta\.kubernetes\.io\/|seccomp\.security\.alpha\.kubernetes\.io\/pod$|container\.seccomp\.security\.alpha\.kubernetes\.io\/)/;

/** What the checks read of a pod, minus container images: the only part of a running pod's spec an update may change that matters. */
function securityRelevant(pod: Pod): unknown {
  const withoutImages = (list: Pod['spec']['containers']) => (list ?? []).map(({ image: _image, ...rest }) => rest);
  return {
    spec: {
      ...pod.spec,
      containers: withoutImages(pod.spec.containers),
      initContainers: withoutImages(pod.spec.initContainers),
      ephemeralContainers: withoutImages(pod.spec.ephemeralContainers),
    },
    annotations: Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => SECURITY_ANNOTATION.test(k)),
  };
}

const serviceSchema = z.looseObject({ spec: z.looseObject({ externalIPs: z.array(z.string()).nullish() }).optional() });

/** A Service's spec.externalIPs ([] when none), or undefined when the object is not a readable Service. */
function externalIPsOf(value: unknown): string[] | undefined {
  const parsed = serviceSchema.safeParse(value);
  return parsed.success ? (parsed.data.spec?.externalIPs ?? []) : undefined;
}

/**
 * The namespace whose owning project the decision needs: a RoleBinding's, and only when it names a project group
 * (`<groupPrefix>project:...`); undefined for anything else. The webhook is called without credentials, so a review
 * costs the gateway an apiserver read only when the answer depends on it.
 */
export function namespaceToLookUp(body: unknown, groupPrefix: string): string | undefined {
  try {
    const request = readReview(body);
    if (resourceOf(request) !== 'rbac.authorization.k8s.io/rolebindings' || !changing(request)) return undefined;
    const parsed = roleBindingSchema.safeParse(request.object);
    const names = parsed.success ? (parsed.data.subjects ?? []) : [];
    return names.some((s) => s.kind === 'Group' && s.name.startsWith(`${groupPrefix}project:`)) ? request.namespace : undefined;
  } catch {
    return undefined;
  }
}

const changing = (request: ReviewRequest): boolean => request.operation === 'CREATE' || request.operation === 'UPDATE';

function reviewService(request: ReviewRequest): AdmissionDecision {
  const allow = (name: string | undefined): AdmissionDecision => answerReview(request, { allowed: true, name, checks: [], logMessage: 'service admitted' });
  if (!changing(request)) return allow(request.name);
  const ips = externalIPsOf(request.object);
  if (ips === undefined) {
    return answerReview(request, { allowed: false, name: request.name, checks: ['unreadable'], message: 'the gateway could not read this Service, so it is refused', logMessage: 'service refused (unreadable)' });
  }
  const before = request.operation === 'UPDATE' ? (externalIPsOf(request.oldObject) ?? []) : [];
  const added = ips.filter((ip) => !before.includes(ip));
  if (added.length === 0) return allow(request.name);
  const name = request.name ?? '';
  return answerReview(request, {
    allowed: false,
    name,
    checks: ['externalIPs'],
    logMessage: 'service refused (externalIPs)',
    message:
      `service "${name}": spec.externalIPs (${added.join(', ')}) is not allowed in tenant namespaces: kube-proxy would send every pod's traffic ` +
      'for those addresses to this Service (CVE-2020-8554); remove spec.externalIPs (use a LoadBalancer or an Ingress the operator provides)',
  });
}

function reviewRoleBinding(request: ReviewRequest, policy: AdmissionPolicy, project: NamespaceProject | undefined): AdmissionDecision {
  const allow = (name: string | undefined): AdmissionDecision => answerReview(request, { allowed: true, name, checks: [], logMessage: 'rolebinding admitted' });
  if (!changing(request)) return allow(request.name);
  const parsed = roleBindingSchema.safeParse(request.object);
  const name = (parsed.success ? (parsed.data.metadata?.name ?? parsed.data.metadata?.generateName) : undefined) ?? request.name ?? '';
  if (!parsed.success) {
    return answerReview(request, {
      allowed: false,
      name,
      checks: ['unreadable'],
      message: `the gateway could not check this RoleBinding, so it is refused: ${firstIssue(parsed.error)}`,
      logMessage: 'rolebinding refused (unreadable)',
    });
  }
  const old = request.operation === 'UPDATE' ? roleBindingSchema.safeParse(request.oldObject) : undefined;
  const namespace = request.namespace ?? '';
  const refused = refusedSubjects(
    parsed.data.subjects ?? [],
    namespace,
    project ?? { unknown: 'the review names no namespace' },
    policy.bindings,
    old?.success === true ? (old.data.subjects ?? []) : [],
  );
  if (refused.length === 0) return allow(name);
  return answerReview(request, {
    allowed: false,
    name,
    checks: refused.map((r) => `subject ${r.subject.kind} ${r.subject.name}`),
    message: describeRefusedSubjects(name, namespace, refused, policy.bindings),
    logMessage: 'rolebinding refused (subjects)',
  });
}

function reviewPod(request: ReviewRequest, policy: AdmissionPolicy): AdmissionDecision {
  const allow = (name: string | undefined): AdmissionDecision => answerReview(request, { allowed: true, name, checks: [], logMessage: 'pod admitted' });
  if (!changing(request)) return allow(request.name);
  if (policy.level === 'privileged' && policy.alwaysPull === undefined) return allow(request.name);

  const reviewed = podOf(request, 'object');
  if (typeof reviewed === 'string') {
    return answerReview(request, {
      allowed: false,
      name: request.name,
      checks: ['unreadable'],
      message: `the gateway could not check this pod, so it is refused: ${reviewed}`,
      logMessage: 'pod refused (unreadable)',
    });
  }
  const { pod } = reviewed;
  const name = pod.metadata?.name ?? request.name ?? pod.metadata?.generateName ?? '';
  // An old pod it cannot read makes the update count as a creation: every check applies to everything.
  const oldReviewed = request.operation === 'UPDATE' ? podOf(request, 'oldObject') : undefined;
  const old = oldReviewed !== undefined && typeof oldReviewed !== 'string' ? oldReviewed.pod : undefined;

  const refusals: Array<{ family: string; checks: readonly string[]; message: string }> = [];
  const cached = policy.alwaysPull === undefined ? [] : cachedImageUses(pod, policy.alwaysPull, old);
  if (cached.length > 0) {
    const isPodUpdate = request.operation === 'UPDATE' && (request.subResource ?? '') === '';
    refusals.push({ family: 'imagePullPolicy', checks: ['imagePullPolicy'], message: describeCachedImageUses(name, cached, isPodUpdate) });
  }
  // Updates that change nothing the security checks read (labels, owner references, a new image) are not judged again.
  const unchanged = old !== undefined && (request.subResource ?? '') === '' && isDeepStrictEqual(securityRelevant(pod), securityRelevant(old));
  if (policy.level !== 'privileged' && !unchanged) {
    const violations = podSecurityViolations(pod, policy.level);
    if (violations.length > 0) refusals.push({ family: 'pod security', checks: violations.map((v) => v.check), message: describeViolations(name, policy.level, violations) });
    const mounts = policy.subPath.refuse ? subPathMounts(pod) : [];
    if (policy.subPath.refuse && mounts.length > 0) {
      refusals.push({ family: 'subPath (CVE-2021-25741)', checks: ['subPath'], message: describeSubPathMounts(name, mounts, policy.subPath.because) });
    }
  }
  if (refusals.length === 0) return allow(name);
  return answerReview(request, {
    allowed: false,
    name,
    checks: refusals.flatMap((r) => r.checks),
    message: refusals.map((r) => r.message).join('. '),
    logMessage: `pod refused by ${refusals.map((r) => r.family).join(', ')}`,
  });
}

/**
 * Decides one validating AdmissionReview. Pods meet the Pod Security Standards at the policy's level, mount no subPath
 * on a cluster affected by CVE-2021-25741, and (alwaysPullImages) run no unshared image from a node's cache. Updates
 * that change nothing the security checks read (labels, owner references, a new image: what controllers and the
 * garbage collector do to existing pods) are allowed, as the apiserver's own PodSecurity admission does, so pods that
 * predate the webhook can still be managed and removed. Services are refused new spec.externalIPs whatever the level
 * (CVE-2020-8554; nothing in Kubernetes before 1.22 stops it). RoleBindings may not name subjects outside the project
 * (rolebinding-review.ts); `project` is the owner of the review's namespace, looked up by the caller.
 */
export function reviewPodAdmission(body: unknown, policy: AdmissionPolicy, project?: NamespaceProject): AdmissionDecision {
  const request = readReview(body);
  const resource = resourceOf(request);
  if (resource === 'services') return reviewService(request);
  if (resource === 'rbac.authorization.k8s.io/rolebindings') return reviewRoleBinding(request, policy, project);
  if (resource === 'pods' || resource === 'pods/ephemeralcontainers') return reviewPod(request, policy);
  return refuseUnexpectedResource(request, resource, {
    handles: "the gateway's admission webhook reviews only pods, pods/ephemeralcontainers, services and rolebindings",
    configuration: 'ValidatingWebhookConfiguration',
  });
}
