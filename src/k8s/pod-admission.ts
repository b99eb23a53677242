import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { describeViolations, podSchema, podSecurityViolations, type Pod, type PodSecurityLevel } from './pod-security.js';

/**
 * The decision of the gateway's validating admission webhook for pods (admission.k8s.io/v1 AdmissionReview in,
 * AdmissionReview out). Everything it cannot read is refused: a review without a uid cannot be answered at all
 * (a `review_invalid` error: the HTTP call fails, and the webhook's failurePolicy Fail refuses the pod); a review whose
 * object it cannot read is answered allowed=false with the reason.
 */

const reviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.looseObject({
    uid: z.string().min(1),
    kind: z.looseObject({ group: z.string(), version: z.string(), kind: z.string() }),
    resource: z.looseObject({ group: z.string(), version: z.string(), resource: z.string() }),
    subResource: z.string().optional(),
    namespace: z.string().optional(),
    name: z.string().optional(),
    operation: z.string(),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
  }),
});
type ReviewRequest = z.infer<typeof reviewSchema>['request'];

/** Kubernetes 1.20 and 1.21 send the ephemeralcontainers subresource as this kind rather than as a Pod. */
const ephemeralContainersSchema = z.looseObject({
  kind: z.literal('EphemeralContainers'),
  metadata: podSchema.shape.metadata,
  ephemeralContainers: z.array(z.unknown()),
});


export interface AdmissionDecision {
  /** The AdmissionReview to answer with. */
  readonly review: unknown;
  readonly allowed: boolean;
  /** For the log: names only, never the pod's contents. */
  readonly summary: {
    readonly uid: string;
    readonly namespace?: string;
    /** The object's name: a pod's, or a Service's (`service`). */
    readonly pod?: string;
    readonly service?: string;
    readonly operation: string;
    readonly subResource?: string;
    readonly checks: readonly string[];
  };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? 'unreadable' : `${issue.path.join('.') || '(top level)'}: ${issue.message}`;
}

/** The object under review as a Pod, or the reason it is not one. */
function podOf(request: ReviewRequest, which: 'object' | 'oldObject'): Pod | string {
  const value = request[which];
  const asEphemeral = ephemeralContainersSchema.safeParse(value);
  const candidate = asEphemeral.success
    ? { metadata: asEphemeral.data.metadata, spec: { ephemeralContainers: asEphemeral.data.ephemeralContainers } }
    : value;
  const parsed = podSchema.safeParse(candidate);
  return parsed.success ? parsed.data : `the ${which} is not a readable Pod (${firstIssue(parsed.error)})`;
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
 * Decides one AdmissionReview at the given level. Services (the same webhook, its second rule) are refused new
 * spec.externalIPs whatever the level: a tenant Service with externalIPs intercepts traffic of the whole cluster
 * (CVE-2020-8554), and nothing in Kubernetes before 1.22 (DenyServiceExternalIPs) stops it. Updates that change nothing the checks read (labels, owner
 * references, a new image: what controllers and the garbage collector do to existing pods) are allowed, as the
 * apiserver's own PodSecurity admission does, so pods that predate the webhook can still be managed and removed.
 */
export function reviewPodAdmission(body: unknown, level: PodSecurityLevel): AdmissionDecision {
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) throw new GatewayError('review_invalid', `not an admission.k8s.io/v1 AdmissionReview (${firstIssue(parsed.error)})`);
  const { request } = parsed.data;
  const base = {
    uid: request.uid,
    operation: request.operation,
    ...(request.namespace !== undefined ? { namespace: request.namespace } : {}),
    ...(request.subResource !== undefined && request.subResource !== '' ? { subResource: request.subResource } : {}),
  };
  const answer = (allowed: boolean, pod: string | undefined, checks: readonly string[], message?: string): AdmissionDecision => ({
    allowed,
    summary: { ...base, ...(pod !== undefined ? (request.resource.resource === 'services' ? { service: pod } : { pod }) : {}), checks },
    review: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: request.uid,
        allowed,
        ...(message !== undefined ? { status: { code: 403, reason: 'Forbidden', message } } : {}),
      },
    },
  });

  const { resource, subResource = '' } = request;
  if (resource.group === '' && resource.resource === 'services' && subResource === '') {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return answer(true, request.name, []);
    const ips = externalIPsOf(request.object);
    if (ips === undefined) return answer(false, request.name, ['unreadable'], 'the gateway could not read this Service, so it is refused');
    const before = request.operation === 'UPDATE' ? (externalIPsOf(request.oldObject) ?? []) : [];
    const added = ips.filter((ip) => !before.includes(ip));
    if (added.length === 0) return answer(true, request.name, []);
    const name = request.name ?? '';
    return answer(
      false,
      name,
      ['externalIPs'],
      `service "${name}": spec.externalIPs (${added.join(', ')}) is not allowed in tenant namespaces: kube-proxy would send every pod's traffic ` +
        'for those addresses to this Service (CVE-2020-8554); remove spec.externalIPs (use a LoadBalancer or an Ingress the operator provides)',
    );
  }
  if (resource.group !== '' || resource.resource !== 'pods' || !['', 'ephemeralcontainers'].includes(subResource)) {
    const what = `${resource.group === '' ? '' : `${resource.group}/`}${resource.resource}${subResource === '' ? '' : `/${subResource}`}`;
    return answer(false, request.name, ['unexpected resource'], `the gateway's pod security webhook reviews only pods, pods/ephemeralcontainers and services, not ${what}: the ValidatingWebhookConfiguration's rules are wrong; ask the cluster operator`);
  }
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return answer(true, request.name, []);
  if (level === 'privileged') return answer(true, request.name, []);

  const pod = podOf(request, 'object');
  if (typeof pod === 'string') return answer(false, request.name, ['unreadable'], `the gateway could not check this pod, so it is refused: ${pod}`);
  const name = pod.metadata?.name ?? request.name ?? pod.metadata?.generateName ?? '';
  if (request.operation === 'UPDATE' && subResource === '') {
    const old = podOf(request, 'oldObject');
    if (typeof old !== 'string' && isDeepStrictEqual(securityRelevant(pod), securityRelevant(old))) return answer(true, name, []);
  }
  const violations = podSecurityViolations(pod, level);
  if (violations.length === 0) return answer(true, name, []);
  return answer(false, name, violations.map((v) => v.check), describeViolations(name, level, violations));
}
