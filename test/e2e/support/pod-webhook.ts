import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { e2eEnv } from './env.js';
import type { GatewayProcess } from './gateway-process.js';
import { adminKubectl, kubectl, mustSucceed } from './kubectl.js';

/** The label the gateway stamps on project namespaces (src/k8s/tenancy.ts POD_SECURITY_LABEL). */
export const POD_SECURITY_LABEL = 'zun-gateway.openstack.org/pod-security';
const PROJECT_LABEL = 'zun-gateway.openstack.org/project-id';

export interface RegisteredWebhook {
  readonly name: string;
  /** Deletes both configurations (a Fail-policy webhook left behind would refuse pods when the gateway stops). */
  remove(): Promise<void>;
}

/** The webhook configurations of the README's "Pods without the Helm chart", as an operator would copy them. */
function readmeWebhookConfigurations(): Array<Record<string, unknown>> {
  const readme = readFileSync(path.resolve('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Pods without the Helm chart'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md has no YAML under "Pods without the Helm chart"');
  return parseAllDocuments(block).map((d) => d.toJSON() as Record<string, unknown>);
}

interface Webhook {
  name: string;
  clientConfig: { url: string; caBundle: string };
  namespaceSelector: { matchExpressions: unknown[] };
}

/**
 * Registers the test gateway's admission webhooks with the real apiserver exactly as the README tells an operator
 * without the chart (its YAML, read from README.md): the validating one (pods, Services, RoleBindings) and the
 * mutating one (imagePullPolicy Always), by `url:` (the gateway runs on the host's loopback, not as a Service),
 * trusting the e2e CA. Three changes to what the README says: a unique name, webhook names with `.e2e`, and a
 * namespaceSelector that also requires one of `projectIds`, so the webhooks never see an object of any other namespace
 * of the shared cluster. Resolves once the apiserver calls both (webhook configurations are loaded asynchronously).
 */
export async function registerPodSecurityWebhook(
  gateway: GatewayProcess,
  projectIds: readonly string[],
  probeNamespace: string,
  /** Another cluster of a gateway with several: its admin kubeconfig, and its name (the README: its own webhook paths). */
  on?: { readonly kubeconfig: string; readonly cluster: string },
): Promise<RegisteredWebhook> {
  const admin = (args: readonly string[], input?: string) => (on === undefined ? adminKubectl(args, input) : kubectl(on.kubeconfig, args, input !== undefined ? { input } : {}));
  const name = `zun-gateway-e2e-pods-${randomBytes(4).toString('hex')}`;
  const caBundle = readFileSync(e2eEnv().tlsCa).toString('base64');
  const items = readmeWebhookConfigurations().map((config) => {
    for (const hook of config.webhooks as Webhook[]) {
      hook.name = hook.name.replace('.zun-gateway.openstack.org', '.e2e.zun-gateway.openstack.org');
      const url = hook.clientConfig.url.replace(/^https:\/\/gateway\.example:8443/, gateway.url);
      hook.clientConfig = { url: on === undefined ? url : url.replace('/admission/v1/pods', `/admission/v1/clusters/${on.cluster}/pods`), caBundle };
      hook.namespaceSelector.matchExpressions.push({ key: PROJECT_LABEL, operator: 'In', values: [...projectIds] });
    }
    config.metadata = { name };
    return config;
  });
  assert.deepEqual(items.map((i) => i.kind), ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'], "the README's webhook configurations");
  const remove = async (): Promise<void> => {
    await admin(['delete', 'validatingwebhookconfiguration,mutatingwebhookconfiguration', name, '--ignore-not-found']);
  };
  try {
    await mustSucceed(admin(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items })), 'register the admission webhooks');
    await untilCalled(probeNamespace, admin);
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
async function untilCalled(namespace: string, admin: (args: readonly string[], input?: string) => ReturnType<typeof adminKubectl>): Promise<void> {
  const probe = (spec: object): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'webhook-probe', namespace }, spec });
  const refused = probe({ hostPID: true, containers: [{ name: 'c', image: e2eEnv().busyboxImage }] });
  const mutated = probe({ containers: [{ name: 'c', image: 'registry.invalid/probe:1', imagePullPolicy: 'IfNotPresent' }] });
  let last = '';
  for (let i = 0; i < 60; i += 1) {
    const r = await admin(['create', '--dry-run=server', '-f', '-'], refused);
    const m = await admin(['create', '--dry-run=server', '-o', 'jsonpath={.spec.containers[0].imagePullPolicy}', '-f', '-'], mutated);
    if (/denied the request/.test(r.stderr) && m.stdout === 'Always') return;
    last = `${r.stdout}${r.stderr} / ${m.stdout}${m.stderr}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the apiserver did not call the gateway's webhooks within 30 s: ${last}`);
}
