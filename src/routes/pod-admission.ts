import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionDecision } from '../k8s/pod-admission.js';
import type { Logger } from '../observability/logger.js';
import { readBody } from '../proxy/read-body.js';
import { GatewayError } from '../errors.js';
import { gatewayDialect, replyFor, sendError } from './respond.js';

/** Where the apiserver calls the gateway's validating admission webhook for pods (outside /k8s and /docker). */
export const POD_ADMISSION_PATH = '/admission/v1/pods';
/** Where it calls the mutating one (imagePullPolicy: Always, k8s.tenancy.alwaysPullImages). */
export const IMAGE_PULL_ADMISSION_PATH = '/admission/v1/pods/image-pull-policy';

/**
 * A cluster's own webhook paths, /admission/v1/clusters/<name>/pods[/image-pull-policy]: the gateway answers each with
 * that cluster's facts (its version, its namespaces' owners). The first cluster is also served at the paths above.
 */
export function clusterAdmissionPaths(cluster: string): { readonly pods: string; readonly imagePull: string } {
  const pods = `/admission/v1/clusters/${cluster}/pods`;
  return { pods, imagePull: `${pods}/image-pull-policy` };
}

const ADMISSION_PATH = /^\/admission\/v1\/(clusters\/[a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?pods(\/image-pull-policy)?$/;

/** A webhook path: the apiserver calls them without a token (and, unless configured to, without a client certificate). */
export function isAdmissionPath(path: string): boolean {
  return ADMISSION_PATH.test(path);
}

/**
 * An AdmissionReview holds the pod and, on updates, the old pod: the apiserver stores objects of up to 1.5 MiB, so
 * twice that is the most a genuine review needs.
 */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/**
 * The apiserver gives a webhook at most 30 s; a body still arriving after that is no apiserver's (the endpoint needs no
 * token, so an unbounded read would let anyone hold connections by dripping bytes).
 */
export const REVIEW_READ_MS = 30_000;

function readReview(req: IncomingMessage, readMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new GatewayError('request_timeout', `the AdmissionReview did not arrive within ${readMs / 1000} s`)), readMs);
  });
  return Promise.race([readBody(req, MAX_REVIEW_BYTES, Number.isFinite(declared) ? declared : undefined), late]).finally(() => clearTimeout(timer));
}

/**
 * POST /admission/v1/pods (and /admission/v1/pods/image-pull-policy): the apiserver's call to an admission webhook.
 * No Keystone authentication (the caller is the apiserver, and the answer is only a decision about the object it
 * sent); the body is read up to MAX_REVIEW_BYTES within REVIEW_READ_MS. What cannot be read is answered 400, 408 or
 * 413, which the webhook's failurePolicy Fail turns into a refusal. The log gets the decision with names only, never
 * the object's contents.
 */
export function podAdmissionHandler(
  decide: (review: unknown) => AdmissionDecision | Promise<AdmissionDecision>,
  logFields: Record<string, unknown>,
  logger: Logger,
  readMs = REVIEW_READ_MS,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const body = await readReview(req, readMs);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        sendError(res, gatewayDialect, { status: 400, message: 'the body is not JSON: an admission.k8s.io/v1 AdmissionReview was expected' });
        return;
      }
      const decision = await decide(json);
      logger.info({ admission: decision.summary, allowed: decision.allowed, ...logFields }, decision.logMessage);
      const text = JSON.stringify(decision.review);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    } catch (err) {
      const reply = replyFor(err, logger);
      logger.warn({ status: reply.status, reason: reply.message }, 'admission review refused unread');
      sendError(res, gatewayDialect, reply);
    }
  };
}
