import { accessSync, constants, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { failureMessage, userToken, type CommandIo, type UserTokenOptions } from './exec-credential.js';
import { buildKubeconfig, contextsFor, gatewayUrls, type GatewayCluster, type ListedCluster } from './kubeconfig-document.js';
import { inputError, type Env } from '../config/openstack-inputs.js';
import { Agent, request } from 'undici';
import { hasCode, isUntrustedIssuer, systemCode } from '../errors.js';

export { buildKubeconfig, gatewayUrls, type GatewayCluster, type KubeconfigOptions } from './kubeconfig-document.js';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Directories npm and npx put on PATH only while they run a command (a project's `node_modules/.bin`, npx's cache):
 * a `zun-gateway` found there is not on the PATH kubectl will have.
 */
function onlyWhileNpmRuns(dir: string): boolean {
  const parts = path.resolve(dir).split(path.sep);
  return parts.includes('_npx') || parts.slice(-2).join('/') === 'node_modules/.bin';
}

/**
 * `zun-gateway` when it is on the user's PATH (a global install), else this very node and script: what kubectl will
 * run as the exec plugin.
 */
export function pluginCommand(env: Env, mainScript: string, nodePath: string): { command: string; args: string[] } {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '' || onlyWhileNpmRuns(dir)) continue;
    if (isExecutable(path.join(dir, 'zun-gateway'))) return { command: 'zun-gateway', args: ['credential'] };
  }
  return { command: path.resolve(nodePath), args: [path.resolve(mainScript), 'credential'] };
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_WHOAMI_BODY = 1024 * 1024;
const WHOAMI_TIMEOUT_MS = 15_000;

/**
 * What the gateway's /whoami says of the caller on Kubernetes: the namespace (of the first cluster), and the clusters
 * the caller may use when the gateway lists them; or why it could not be asked (a warning for the user).
 */
export type WhoamiAnswer =
  | { readonly namespace?: string; readonly clusters?: readonly ListedCluster[] }
  | { readonly warning: string };

const whoamiBody = z.object({
  namespace: z.string().min(1).optional().catch(undefined),
  coes: z
    .object({
      k8s: z
        .object({ clusters: z.array(z.object({ name: z.string().regex(dnsLabel), server: z.string().refine((s) => URL.canParse(s)), namespace: z.string().min(1).optional() })).optional() })
        .optional(),
    })
    .optional()
    .catch(undefined),
});

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Asks the gateway's GET /whoami which namespace the token's project maps to, and which clusters it may use. */
export async function askWhoami(root: string, token: string, ca: Buffer | undefined, insecure: boolean): Promise<WhoamiAnswer> {
  const dispatcher = new Agent({
    headersTimeout: WHOAMI_TIMEOUT_MS,
    bodyTimeout: WHOAMI_TIMEOUT_MS,
    connectTimeout: WHOAMI_TIMEOUT_MS,
    maxResponseSize: MAX_WHOAMI_BODY,
    connect: { ...(ca ? { ca } : {}), ...(insecure ? { rejectUnauthorized: false } : {}) },
  });
  let status: number;
  let text: string;
  try {
    const res = await request(`${root}/whoami`, {
      dispatcher,
      headers: { 'x-auth-token': token, accept: 'application/json', 'user-agent': 'zun-gateway kubeconfig' },
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    const hint = isUntrustedIssuer(err) && ca === undefined ? "; the gateway's certificate is not trusted here, and kubectl will refuse it too: pass --certificate-authority <the CA that signed it>" : '';
    const code = systemCode(err);
    const why = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? `no answer within ${WHOAMI_TIMEOUT_MS / 1000} s` : (err as Error).message;
    return { warning: `could not ask the gateway's /whoami (${oneLine(why)})${hint}` };
  } finally {
    void dispatcher.close();
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status === 404) return { warning: 'the gateway has no /whoami (HTTP 404)' };
  if (status !== 200) {
    const message = typeof (body as { message?: unknown })?.message === 'string' ? (body as { message: string }).message : text;
    return { warning: `the gateway answered HTTP ${status} to /whoami: ${oneLine(message)}` };
  }
  const read = whoamiBody.safeParse(body);
  if (!read.success) return { warning: 'the gateway answered /whoami with a body this client cannot read' };
  const listed = read.data.coes?.k8s?.clusters;
  return {
    ...(read.data.namespace !== undefined ? { namespace: read.data.namespace } : {}),
    ...(listed !== undefined ? { clusters: listed } : {}),
  };
}

/** The contexts to write for the clusters /whoami listed (contextsFor); none listed: the project may use none of them. */
function contextsOrRefusal(listed: readonly ListedCluster[] | undefined): readonly GatewayCluster[] | undefined {
  if (listed !== undefined && listed.length === 0) {
    throw inputError("your project may use none of the gateway's Kubernetes clusters (each is open to Keystone projects with certain tags): ask a cloud administrator");
  }
  return contextsFor(listed);
}

/**
 * Written atomically with mode 0600: a kubeconfig is the user's own file, even without a secret in it. A missing
 * directory (`--output ~/.kube/zun` on an account that never ran kubectl) is made, mode 0700, as kubectl makes ~/.kube.
 */
export function writeKubeconfig(text: string, output: string | undefined, out: (s: string) => void): void {
  if (output === undefined) {
    out(text);
    return;
  }
  const dir = path.dirname(path.resolve(output));
  const tmp = path.join(dir, `.${path.basename(output)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, output);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    throw inputError(`cannot write ${output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export interface KubeconfigCommandOptions {
  /** Undefined: the gateway's public endpoint in the user's Keystone catalog. */
  readonly server?: string | undefined;
  /** The catalog service type to look for (zun-gateway). */
  readonly serviceType?: string | undefined;
  readonly certificateAuthority?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
  readonly output?: string | undefined;
  readonly contextName?: string | undefined;
  readonly namespace?: string | undefined;
}

/** The running program, for a kubeconfig that runs it again as the credential plugin. */
export interface SelfCommand {
  readonly mainScript: string;
  readonly nodePath: string;
}

const commandOptions = z.object({
  server: z
    .string()
    .refine((s) => URL.canParse(s), { message: '--server must be a URL such as https://gateway.example:8443' })
    .refine((s) => !URL.canParse(s) || new URL(s).protocol === 'https:', {
      message: '--server must be an https:// URL: kubectl sends credentials and runs credential plugins only over TLS',
    }),
  contextName: z.string().trim().min(1, '--context-name must not be empty').optional(),
  namespace: z
    .string()
    .refine((n) => n.length <= 63 && dnsLabel.test(n), { message: '--namespace must be a Kubernetes namespace name (a DNS-1123 label)' })
    .optional(),
});

export function readCa(file: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw inputError(`cannot read --certificate-authority ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!data.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
    throw inputError(`--certificate-authority ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return data;
}

/**
 * `zun-gateway kubeconfig`: 0 and a kubeconfig on stdout or in --output, or 1 and one line on stderr. The context
 * namespace is --namespace, else what the gateway's /whoami says for the user's token; when the gateway cannot tell
 * it the kubeconfig is still written, with a warning. Credentials Keystone rejects (or missing inputs) are an error.
 */
export async function runKubeconfig(
  opts: KubeconfigCommandOptions,
  env: Env,
  io: CommandIo,
  self: SelfCommand,
  tokenOptions: UserTokenOptions = {},
): Promise<number> {
  const warn = (line: string): void => io.err(`zun-gateway kubeconfig: warning: ${line}\n`);
  try {
    // Loaded when needed: main.ts imports this module for every command, `credential` (run before each kubectl) too.
    const server = opts.server ?? (await (await import('./identity-session.js')).serverFromCatalog(env, opts.serviceType, tokenOptions));
    const checked = commandOptions.safeParse({ ...opts, server });
    if (!checked.success) throw inputError(checked.error.issues[0]?.message ?? 'invalid options');
    if (opts.certificateAuthority !== undefined && opts.insecureSkipTlsVerify) {
      throw inputError('use either --certificate-authority or --insecure-skip-tls-verify, not both');
    }
    const ca = opts.certificateAuthority !== undefined ? readCa(opts.certificateAuthority) : undefined;
    let namespace = opts.namespace;
    let clusters: readonly GatewayCluster[] | undefined;
    const noNamespace = 'the context has no namespace (pass --namespace to set one)';
    // With --namespace the gateway is asked only for its clusters, and only when a token is at hand.
    const consequence = namespace === undefined ? noNamespace : 'the kubeconfig has one context, for /k8s';
    let token: string | undefined;
    try {
      token = (await userToken(env, { warn, ...tokenOptions })).token;
    } catch (e) {
      // Credentials that do not work make a kubeconfig that cannot work: say so now, not at the first kubectl run.
      if (namespace === undefined && hasCode(e, 'client_input')) throw e;
      if (namespace === undefined) warn(`no Keystone token to ask the gateway for your namespace: ${failureMessage(e)}; ${noNamespace}`);
    }
    if (token !== undefined) {
      const answer = await askWhoami(gatewayUrls(server).root, token, ca, opts.insecureSkipTlsVerify === true);
      if ('warning' in answer) warn(`${answer.warning}; ${consequence}`);
      else {
        clusters = contextsOrRefusal(answer.clusters);
        if (namespace === undefined && clusters === undefined) {
          if (answer.namespace !== undefined) namespace = answer.namespace;
          else warn(`the gateway maps you to no namespace (its /whoami has none); ${noNamespace}`);
        }
      }
    }
    const text = buildKubeconfig(
      {
        server,
        certificateAuthorityData: ca,
        insecureSkipTlsVerify: opts.insecureSkipTlsVerify,
        contextName: checked.data.contextName,
        namespace,
        clusters,
        plugin: pluginCommand(env, self.mainScript, self.nodePath),
      },
      env,
    );
    writeKubeconfig(text, opts.output, io.out);
    return 0;
  } catch (e) {
    io.err(`zun-gateway kubeconfig: ${hasCode(e, 'client_input') ? e.message : `unexpected failure: ${(e as Error).message}`}\n`.split('\n')[0] + '\n');
    return 1;
  }
}
