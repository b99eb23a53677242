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
  /**
   * A gateway with several clusters: one cluster and context each, named `<contextName>-<cluster>`, the first
   * current; `path` is where the cluster is served below the gateway's root. Unset: one, for /k8s.
   */
  readonly clusters?: readonly GatewayCluster[] | undefined;
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

/** A cluster of the gateway, as its /whoami lists it: its name, where it is served, the caller's namespace there. */
export interface GatewayCluster {
  readonly name: string;
  /** Below the gateway's root: /k8s/clusters/<name>. */
  readonly path: string;
  readonly namespace?: string | undefined;
}

/** What the gateway's /whoami lists of a cluster (coes.k8s.clusters[]): its name, server URL, the caller's namespace. */
export interface ListedCluster {
  readonly name: string;
  readonly server: string;
  readonly namespace?: string | undefined;
}

/**
 * The contexts to write for the clusters a gateway lists: undefined for one served at /k8s (a gateway with one
 * cluster: the kubeconfig it always had); each listed one otherwise (none: an empty list, the caller says why).
 */
export function contextsFor(listed: readonly ListedCluster[] | undefined): readonly GatewayCluster[] | undefined {
  if (listed === undefined) return undefined;
  const clusters = listed.map((c) => ({ name: c.name, path: new URL(c.server).pathname.replace(/\/+$/, ''), ...(c.namespace !== undefined ? { namespace: c.namespace } : {}) }));
  if (clusters.length === 1 && clusters[0]?.path.endsWith('/k8s') === true) return undefined;
  return clusters;
}

export function buildKubeconfig(options: KubeconfigOptions, env: Env): string {
  const { root, k8s } = gatewayUrls(options.server);
  const name = options.contextName ?? 'zun-gateway';
  const tls: Record<string, unknown> = {};
  if (options.certificateAuthorityData !== undefined) {
    tls['certificate-authority-data'] = options.certificateAuthorityData.toString('base64');
  }
  if (options.insecureSkipTlsVerify) tls['insecure-skip-tls-verify'] = true;
  const entries =
    options.clusters === undefined
      ? [{ name, server: k8s, namespace: options.namespace }]
      : options.clusters.map((c) => ({ name: `${name}-${c.name}`, server: `${root}${c.path}`, namespace: options.namespace ?? c.namespace }));
  const pluginEnv = RECORDED_ENV.filter(({ name: n }) => env[n] !== undefined && env[n] !== '').map(({ name: n, isPath }) => ({
    name: n,
    value: isPath ? path.resolve(env[n] as string) : (env[n] as string),
  }));
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: entries.map((e) => ({ name: e.name, cluster: { server: e.server, ...tls } })),
    // One user for every context: the same exec plugin, the same Keystone token.
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
    contexts: entries.map((e) => ({ name: e.name, context: { cluster: e.name, user: name, ...(e.namespace ? { namespace: e.namespace } : {}) } })),
    'current-context': entries[0]?.name ?? name,
  });
}
