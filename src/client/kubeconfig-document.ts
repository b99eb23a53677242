import path from 'node:path';
import { stringify } from 'yaml';
import type { Env } from '../config/openstack-inputs.js';

/**
 * The kubeconfig document alone, without I/O: `zun-gateway kubeconfig` writes it on the user's machine, and the
 * gateway's page hands the same document out (so the gateway imports nothing of the user-side commands).
 */

/** The exec credential API kubeconfigs name (kubectl may ask for v1beta1 at run time; exec-credential.ts). */
export const EXEC_API_V1 = 'client.authentication.k8s.io/v1';

export interface KubeconfigOptions {
  /** The gateway's URL, its root or its /k8s endpoint. */
  readonly server: string;
  /** PEM of the CA that signed the gateway's certificate, embedded so the kubeconfig stands alone. */
  readonly certificateAuthorityData?: Buffer | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
  readonly contextName?: string | undefined;
  readonly namespace?: string | undefined;
  /** How to run `zun-gateway credential`: the command and its arguments. */
  readonly plugin: { readonly command: string; readonly args: readonly string[] };
}

/** The gateway root and the /k8s server URL for a URL given either way. */
export function gatewayUrls(server: string): { root: string; k8s: string } {
  const url = new URL(server);
  const trimmed = url.pathname.replace(/\/+$/, '');
  const root = trimmed.endsWith('/k8s') ? trimmed.slice(0, -4) : trimmed;
  url.pathname = root;
  url.search = '';
  url.hash = '';
  const base = url.toString().replace(/\/+$/, '');
  return { root: base, k8s: `${base}/k8s` };
}

/**
 * Only selectors, never secrets, are recorded for the plugin; passwords stay in the environment or clouds.yaml.
 * Paths are made absolute: kubectl runs the plugin from wherever the user happens to be.
 */
const RECORDED_ENV: ReadonlyArray<{ name: string; isPath: boolean }> = [
  { name: 'OS_CLOUD', isPath: false },
  { name: 'OS_CLIENT_CONFIG_FILE', isPath: true },
  { name: 'OS_CLIENT_SECURE_FILE', isPath: true },
];

export function buildKubeconfig(options: KubeconfigOptions, env: Env): string {
  const { k8s } = gatewayUrls(options.server);
  const name = options.contextName ?? 'zun-gateway';
  const cluster: Record<string, unknown> = { server: k8s };
  if (options.certificateAuthorityData !== undefined) {
    cluster['certificate-authority-data'] = options.certificateAuthorityData.toString('base64');
  }
  if (options.insecureSkipTlsVerify) cluster['insecure-skip-tls-verify'] = true;
  const pluginEnv = RECORDED_ENV.filter(({ name: n }) => env[n] !== undefined && env[n] !== '').map(({ name: n, isPath }) => ({
    name: n,
    value: isPath ? path.resolve(env[n] as string) : (env[n] as string),
  }));
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [
      {
        name,
        user: {
          exec: {
            apiVersion: EXEC_API_V1,
            command: options.plugin.command,
            args: [...options.plugin.args],
            ...(pluginEnv.length > 0 ? { env: pluginEnv } : {}),
            interactiveMode: 'Never',
            provideClusterInfo: false,
          },
        },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: name, ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    'current-context': name,
  });
}

