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
  /** Deletes the ValidatingWebhookConfiguration (a Fail-policy webhook left behind would refuse pods when the gateway stops). */
  remove(): Promise<void>;
}

/**
 * Registers the test gateway's pod security webhook with the real apiserver, as the chart does in a cluster but by
 * `url:` (the gateway runs on the host's loopback, not as a Service), trusting the e2e CA. The namespaceSelector
 * requires the gateway's pod security label AND one of `projectIds`, so the webhook never sees a pod of any other
 * namespace of the shared cluster. Resolves once the apiserver calls it (its webhook configuration is loaded
 * asynchronously).
 */
export async function registerPodSecurityWebhook(gateway: GatewayProcess, projectIds: readonly string[], probeNamespace: string): Promise<RegisteredWebhook> {
  const name = `zun-gateway-e2e-pods-${randomBytes(4).toString('hex')}`;
  const config = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'pods.e2e.zun-gateway.openstack.org',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        clientConfig: { url: `${gateway.url}/admission/v1/pods`, caBundle: readFileSync(e2eEnv().tlsCa).toString('base64') },
        rules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' },
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' },
        ],
        namespaceSelector: {
          matchExpressions: [
            { key: POD_SECURITY_LABEL, operator: 'Exists' },
            { key: PROJECT_LABEL, operator: 'In', values: [...projectIds] },
          ],
        },
      },
    ],
  };
  await mustSucceed(adminKubectl(['apply', '-f', '-'], JSON.stringify(config)), 'register the pod security webhook');
  const remove = async (): Promise<void> => {
    await adminKubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']);
  };
  try {
    await untilCalled(probeNamespace);
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, remove };
}

/** A server-side dry run of a hostPID pod until the webhook refuses it (nothing is stored). */
async function untilCalled(namespace: string): Promise<void> {
  const probe = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'webhook-probe', namespace },
    spec: { hostPID: true, containers: [{ name: 'c', image: e2eEnv().busyboxImage }] },
  });
  let last = '';
  for (let i = 0; i < 60; i += 1) {
    const r = await adminKubectl(['create', '--dry-run=server', '-f', '-'], probe);
    if (/denied the request/.test(r.stderr)) return;
    last = `${r.stdout}${r.stderr}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the apiserver did not call the gateway's webhook within 30 s: ${last}`);
}
