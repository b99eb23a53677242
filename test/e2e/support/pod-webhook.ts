import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { e2eEnv } from './env.js';
import type { GatewayProcess } from './gateway-process.js';
import { adminKubectl, mustSucceed } from './kubectl.js';

/** The label the gateway stamps on project namespaces (src/k8s/tenancy.ts POD_SECURITY_LABEL). */
export const POD_SECURITY_LABEL = 'zun-gateway.openstack.org/pod-security';
const PROJECT_LABEL = 'zun-gateway.openstack.org/project-id';

export interface RegisteredWebhook {
  readonly name: string;
  /** Deletes both configurations (a Fail-policy webhook left behind would refuse pods when the gateway stops). */
  remove(): Promise<void>;
}

/**
 * Registers the test gateway's admission webhooks with the real apiserver, as the chart does in a cluster but by
 * `url:` (the gateway runs on the host's loopback, not as a Service), trusting the e2e CA: the validating one (pods,
 * Services, RoleBindings) and the mutating one (imagePullPolicy Always). The namespaceSelector requires the gateway's
 * pod security label AND one of `projectIds`, so the webhooks never see an object of any other namespace of the
 * shared cluster. Resolves once the apiserver calls both (webhook configurations are loaded asynchronously).
 */
export async function registerPodSecurityWebhook(gateway: GatewayProcess, projectIds: readonly string[], probeNamespace: string): Promise<RegisteredWebhook> {
  const name = `zun-gateway-e2e-pods-${randomBytes(4).toString('hex')}`;
  const caBundle = readFileSync(e2eEnv().tlsCa).toString('base64');
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    namespaceSelector: {
      matchExpressions: [
        { key: POD_SECURITY_LABEL, operator: 'Exists' },
        { key: PROJECT_LABEL, operator: 'In', values: [...projectIds] },
      ],
    },
  };
  const podRule = { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' };
  const validating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        ...common,
        name: 'pods.e2e.zun-gateway.openstack.org',
        clientConfig: { url: `${gateway.url}/admission/v1/pods`, caBundle },
        rules: [
          podRule,
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' },
          { apiGroups: ['rbac.authorization.k8s.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['rolebindings'], scope: 'Namespaced' },
        ],
      },
    ],
  };
  const mutating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        ...common,
        name: 'image-pull.e2e.zun-gateway.openstack.org',
        reinvocationPolicy: 'IfNeeded',
        clientConfig: { url: `${gateway.url}/admission/v1/pods/image-pull-policy`, caBundle },
        rules: [podRule],
      },
    ],
  };
  const remove = async (): Promise<void> => {
    await adminKubectl(['delete', 'validatingwebhookconfiguration,mutatingwebhookconfiguration', name, '--ignore-not-found']);
  };
  try {
    await mustSucceed(adminKubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [validating, mutating] })), 'register the admission webhooks');
    await untilCalled(probeNamespace);
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, remove };
}

/**
 * Server-side dry runs (nothing is stored) until both webhooks answer: a hostPID pod is refused by the validating
 * one, and an ordinary pod of an unshared image comes back with imagePullPolicy Always from the mutating one.
 */
async function untilCalled(namespace: string): Promise<void> {
  const probe = (spec: object): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'webhook-probe', namespace }, spec });
  const refused = probe({ hostPID: true, containers: [{ name: 'c', image: e2eEnv().busyboxImage }] });
  const mutated = probe({ containers: [{ name: 'c', image: 'registry.invalid/probe:1', imagePullPolicy: 'IfNotPresent' }] });
  let last = '';
  for (let i = 0; i < 60; i += 1) {
    const r = await adminKubectl(['create', '--dry-run=server', '-f', '-'], refused);
    const m = await adminKubectl(['create', '--dry-run=server', '-o', 'jsonpath={.spec.containers[0].imagePullPolicy}', '-f', '-'], mutated);
    if (/denied the request/.test(r.stderr) && m.stdout === 'Always') return;
    last = `${r.stdout}${r.stderr} / ${m.stdout}${m.stderr}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the apiserver did not call the gateway's webhooks within 30 s: ${last}`);
}
