import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { stringify } from 'yaml';
import { EXEC_API_V1 } from './exec-credential.js';
import type { Env } from './openstack-inputs.js';

export interface KubeconfigOptions {
  /** The gateway's URL, its root or its /k8s endpoint. */
  readonly server: string;
  readonly certificateAuthority?: string | undefined;
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
  const base = url.toString().replace(/\/+$/, '');
  return { root: base, k8s: `${base}/k8s` };
}

/** `zun-gateway` when it is on PATH, else this very node and script: what kubectl will run as the exec plugin. */
export function pluginCommand(env: Env, mainScript: string, nodePath: string): { command: string; args: string[] } {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, 'zun-gateway'))) return { command: 'zun-gateway', args: ['credential'] };
  }
  return { command: nodePath, args: [mainScript, 'credential'] };
}

/** Only selectors, never secrets, are recorded for the plugin; passwords stay in the environment or clouds.yaml. */
const RECORDED_ENV = ['OS_CLOUD', 'OS_CLIENT_CONFIG_FILE'];

export function buildKubeconfig(options: KubeconfigOptions, env: Env): string {
  const { k8s } = gatewayUrls(options.server);
  const name = options.contextName ?? 'zun-gateway';
  const cluster: Record<string, unknown> = { server: k8s };
  if (options.certificateAuthority !== undefined) {
    cluster['certificate-authority-data'] = readFileSync(options.certificateAuthority).toString('base64');
  }
  if (options.insecureSkipTlsVerify) cluster['insecure-skip-tls-verify'] = true;
  const pluginEnv = RECORDED_ENV.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => ({ name: k, value: env[k] as string }));
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

/** Asks the gateway's /whoami which namespace the caller maps to. */
export function askNamespace(root: string, token: string, ca: Buffer | undefined, insecure: boolean): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${root}/whoami`);
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.get(
      url,
      { headers: { 'x-auth-token': token, accept: 'application/json' }, timeout: 15_000, ...(ca ? { ca } : {}), ...(insecure ? { rejectUnauthorized: false } : {}) },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            let message = body;
            try {
              message = (JSON.parse(body) as { message?: string }).message ?? body;
            } catch {
              /* not JSON */
            }
            reject(new Error(`the gateway answered ${res.statusCode} to /whoami: ${message.slice(0, 300)}`));
            return;
          }
          try {
            const ns = (JSON.parse(body) as { namespace?: unknown }).namespace;
            resolve(typeof ns === 'string' ? ns : undefined);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('the gateway did not answer /whoami within 15 s')));
    req.on('error', reject);
  });
}

export function writeKubeconfig(text: string, output: string | undefined, out: (s: string) => void): void {
  if (output === undefined) out(text);
  else {
    writeFileSync(output, text, { mode: 0o600 });
    chmodSync(output, 0o600);
  }
}
