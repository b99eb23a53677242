import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { podSchema, type Pod } from './pod-security.js';

/**
 * admission.k8s.io/v1 AdmissionReview in and out, shared by the gateway's validating and mutating webhooks. A review
 * without a uid cannot be answered at all (a `review_invalid` error: the HTTP call fails, and the webhook's
 * failurePolicy Fail refuses the object). Pure.
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
export type ReviewRequest = z.infer<typeof reviewSchema>['request'];

export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? 'unreadable' : `${issue.path.join('.') || '(top level)'}: ${issue.message}`;
}

/** The request of a v1 AdmissionReview; throws a `review_invalid` GatewayError when there is none to answer. */
export function readReview(body: unknown): ReviewRequest {
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) throw new GatewayError('review_invalid', `not an admission.k8s.io/v1 AdmissionReview (${firstIssue(parsed.error)})`);
  return parsed.data.request;
}

/** `group/resource/subresource` as a rule names it (`pods`, `pods/ephemeralcontainers`, `rbac.authorization.k8s.io/rolebindings`). */
export function resourceOf(request: ReviewRequest): string {
  const { resource, subResource = '' } = request;
  return `${resource.group === '' ? '' : `${resource.group}/`}${resource.resource}${subResource === '' ? '' : `/${subResource}`}`;
}

/** Kubernetes 1.20 and 1.21 send the ephemeralcontainers subresource as this kind rather than as a Pod. */
const ephemeralContainersSchema = z.looseObject({
  kind: z.literal('EphemeralContainers'),
  metadata: podSchema.shape.metadata,
  ephemeralContainers: z.array(z.unknown()),
});

/**
 * A pod under review, and where its containers sit in the object the apiserver sent: `pod` for a Pod
 * (spec.containers, ...), `ephemeralContainers` for the EphemeralContainers kind (a top-level ephemeralContainers list).
 */
export interface ReviewedPod {
  readonly pod: Pod;
  readonly layout: 'pod' | 'ephemeralContainers';
}

/** The object under review as a Pod, or the reason it is not one. */
export function podOf(request: ReviewRequest, which: 'object' | 'oldObject'): ReviewedPod | string {
  const value = request[which];
  const asEphemeral = ephemeralContainersSchema.safeParse(value);
  const candidate = asEphemeral.success
    ? { metadata: asEphemeral.data.metadata, spec: { ephemeralContainers: asEphemeral.data.ephemeralContainers } }
    : value;
  const parsed = podSchema.safeParse(candidate);
  if (!parsed.success) return `the ${which} is not a readable Pod (${firstIssue(parsed.error)})`;
  return { pod: parsed.data, layout: asEphemeral.success ? 'ephemeralContainers' : 'pod' };
}

/** One RFC 6902 operation. */
export interface JsonPatchOperation {
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

export interface AdmissionSummary {
  readonly uid: string;
  readonly namespace?: string;
  /** The object's name, under its kind: a pod's, a Service's, a RoleBinding's. */
  readonly pod?: string;
  readonly service?: string;
  readonly rolebinding?: string;
  readonly operation: string;
  readonly subResource?: string;
  readonly checks: readonly string[];
  /** The mutating webhook: the containers whose imagePullPolicy it set. */
  readonly patched?: readonly string[];
}

export interface AdmissionDecision {
  /** The AdmissionReview to answer with. */
  readonly review: unknown;
  readonly allowed: boolean;
  /** For the log: names only, never the object's contents. */
  readonly summary: AdmissionSummary;
  /** The log line's message: what was decided, in a few words. */
  readonly logMessage: string;
}

/** What the summary calls the object, by its resource. */
const NAME_KEY: Readonly<Record<string, 'service' | 'rolebinding'>> = { services: 'service', 'rbac.authorization.k8s.io/rolebindings': 'rolebinding' };

/**
 * The answer to one review: allowed, or refused with a 403 message (what kubectl prints after `denied the request:`),
 * with a JSONPatch when the mutating webhook changes the object.
 */
export function answerReview(
  request: ReviewRequest,
  outcome: { allowed: boolean; name?: string | undefined; checks: readonly string[]; message?: string; patch?: readonly JsonPatchOperation[]; patched?: readonly string[]; logMessage: string },
): AdmissionDecision {
  const { allowed, name, checks, message, patch, patched, logMessage } = outcome;
  const subResource = request.subResource ?? '';
  const key = NAME_KEY[`${request.resource.group === '' ? '' : `${request.resource.group}/`}${request.resource.resource}`] ?? 'pod';
  return {
    allowed,
    logMessage,
    summary: {
      uid: request.uid,
      operation: request.operation,
      ...(request.namespace !== undefined ? { namespace: request.namespace } : {}),
      ...(subResource !== '' ? { subResource } : {}),
      ...(name !== undefined ? { [key]: name } : {}),
      checks,
      ...(patched !== undefined ? { patched } : {}),
    },
    review: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: request.uid,
        allowed,
        ...(message !== undefined ? { status: { code: 403, reason: 'Forbidden', message } } : {}),
        ...(patch !== undefined && patch.length > 0 ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}),
      },
    },
  };
}

/**
 * A review of a resource the webhook was not registered for: the webhook configuration's rules are wrong, so the
 * object is refused (failing closed) with what the webhook handles and which configuration to fix.
 */
export function refuseUnexpectedResource(
  request: ReviewRequest,
  resource: string,
  webhook: { readonly handles: string; readonly configuration: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration' },
): AdmissionDecision {
  return answerReview(request, {
    allowed: false,
    name: request.name,
    checks: ['unexpected resource'],
    message: `${webhook.handles}, not ${resource}: the ${webhook.configuration}'s rules are wrong; ask the cluster operator`,
    logMessage: 'refused (unexpected resource)',
  });
}
