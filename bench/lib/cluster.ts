import { readFileSync } from 'node:fs';
import https from 'node:https';
import { e2eEnv } from '../../test/e2e/support/env.js';
import { adminKubectl, mustSucceed } from '../../test/e2e/support/kubectl.js';
import { request } from './http-client.js';

/** kubectl apply as the cluster admin, for the benchmarks' fixtures. */
export async function apply(manifest: unknown): Promise<void> {
  await mustSucceed(adminKubectl(['apply', '-f', '-'], JSON.stringify(manifest)), 'kubectl apply (bench fixture)');
}

/** A namespace alice's project may read (and, for watches and exec, more), as the tenancy mapping would bind it. */
export async function tenantNamespace(name: string, projectId: string, clusterRole = 'view'): Promise<void> {
  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'bench-alpha', namespace: name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `keystone:project:${projectId}:role:member` }],
  });
}

/** A request to the apiserver as the cluster admin (its static token), without kubectl's start-up time. */
export async function adminRequest(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const env = e2eEnv();
  const token = /token:\s*(\S+)/.exec(readFileSync(env.adminKubeconfig, 'utf8'))?.[1] ?? '';
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = {
    authorization: `Bearer ${token}`,
    ...(payload !== undefined ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
  };
  const { status, text } = await request({ url: `${env.kubeServer}${path}`, method, ca: readFileSync(env.kubeCa), headers }, payload, https);
  return { status, json: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
}
