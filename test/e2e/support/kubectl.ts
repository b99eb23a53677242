import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { e2eEnv } from './env.js';
import { Background, run, type RunResult } from './run.js';

/**
 * A kubeconfig as a tenant would have it: `server: https://<gateway>/k8s` (or another `prefix`, such as
 * `/k8s/clusters/west`), the gateway's CA, a Keystone token.
 */
export function tenantKubeconfig(gatewayUrl: string, token: string, namespace?: string, prefix = '/k8s'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-kubeconfig-'));
  const file = path.join(dir, 'config');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'gw', cluster: { server: `${gatewayUrl}${prefix}`, 'certificate-authority': e2eEnv().tlsCa } }],
      users: [{ name: 'tenant', user: { token } }],
      contexts: [{ name: 'gw', context: { cluster: 'gw', user: 'tenant', ...(namespace ? { namespace } : {}) } }],
      'current-context': 'gw',
    }),
    { mode: 0o600 },
  );
  return file;
}

function kubectlEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // A private HOME keeps kubectl's discovery cache per run, so no test depends on another's cache.
  return { PATH: process.env.PATH ?? '', HOME: process.env.E2E_HOME ?? os.tmpdir(), ...extra };
}

export function kubectl(kubeconfig: string, args: readonly string[], options: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(e2eEnv().kubectl, ['--kubeconfig', kubeconfig, ...args], {
    env: kubectlEnv(options.env),
    ...(options.input !== undefined ? { input: options.input } : {}),
    timeoutMs: options.timeoutMs ?? 120_000,
  });
}

export function kubectlBackground(kubeconfig: string, args: readonly string[], env?: Record<string, string>): Background {
  return new Background(e2eEnv().kubectl, ['--kubeconfig', kubeconfig, ...args], { env: kubectlEnv(env) });
}

/** The cluster's own side: seeding RBAC and fixtures with the admin kubeconfig, never through the gateway. */
export function adminKubectl(args: readonly string[], input?: string): Promise<RunResult> {
  return kubectl(e2eEnv().adminKubeconfig, args, input !== undefined ? { input } : {});
}

export async function mustSucceed(result: Promise<RunResult> | RunResult, what: string): Promise<string> {
  const r = await result;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
