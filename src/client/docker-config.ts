import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { z } from 'zod';
import { inputError, type Env } from '../config/openstack-inputs.js';
import { placeholderClientCertificate } from '../config/self-signed-tls.js';
import { hasCode, isUntrustedIssuer } from '../errors.js';
import { DEFAULT_SERVICE_TYPE } from './catalog.js';
import { failureMessage, type CommandIo, type UserTokenOptions } from './exec-credential.js';
import { identitySession, serverFromCatalog } from './identity-session.js';
import type { AccessRule, IdentityApi, TokenOwner } from './keystone-api.js';
import { gatewayUrls, readCa } from './kubeconfig.js';

export interface DockerConfigCommandOptions {
  readonly output: string;
  readonly server?: string | undefined;
  readonly certificateAuthority?: string | undefined;
  /** A docker context of this name in DIR instead of DOCKER_HOST & co. */
  readonly context?: string | undefined;
  /** Delete the application credential (and take it out of DIR/config.json) instead. */
  readonly revoke?: boolean | undefined;
  readonly serviceType?: string | undefined;
}

/** How docker-config reaches the world outside: the docker CLI (for --context) and the gateway's TLS check. */
export interface DockerConfigDeps {
  /** Runs `docker` with these arguments; rejects with its stderr when it fails. */
  readonly docker?: (args: readonly string[]) => Promise<void>;
}

/**
 * Every method the docker CLI and docker-py use, on the gateway's /docker paths only: a leaked config.json opens
 * this gateway's Docker API to its holder, not the user's whole cloud (Nova, Swift, Keystone itself ...).
 */
export function dockerAccessRules(serviceType: string): AccessRule[] {
  return ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].map((method) => ({ service: serviceType, method, path: '/docker/**' }));
}

/** tcp://host:port/docker for the gateway's URL: the docker CLI keeps the path as the API's base. */
export function dockerHost(server: string): string {
  const url = new URL(gatewayUrls(server).root);
  const port = url.port !== '' ? url.port : '443';
  const base = url.pathname.replace(/\/+$/, '');
  return `tcp://${url.hostname.includes(':') ? `[${url.hostname.replace(/^\[|\]$/g, '')}]` : url.hostname}:${port}${base}/docker`;
}

/** One credential per user, gateway and project (Keystone names are unique per user). */
export function credentialName(server: string, projectId: string): string {
  return `zun-gateway docker-config ${new URL(server).host} ${projectId}`;
}

const configFileSchema = z.record(z.string(), z.unknown());
const basicOf = (header: unknown): { id: string; secret: string } | undefined => {
  const match = typeof header === 'string' ? /^Basic\s+(\S+)$/i.exec(header.trim()) : null;
  if (match === null) return undefined;
  const text = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon > 0 ? { id: text.slice(0, colon), secret: text.slice(colon + 1) } : undefined;
};

function readConfigJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw inputError(`${file} is not JSON: move it away, or choose another --output`);
  }
  const checked = configFileSchema.safeParse(parsed);
  if (!checked.success) throw inputError(`${file} is not a docker config.json (not an object): move it away, or choose another --output`);
  return checked.data;
}

function headersOf(config: Record<string, unknown>): Record<string, unknown> {
  const h = config.HttpHeaders;
  return h !== null && typeof h === 'object' && !Array.isArray(h) ? { ...(h as Record<string, unknown>) } : {};
}

/** Written to a temporary name and renamed, mode 0600 from the first byte. */
function writePrivate(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw inputError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The output directory, made 0700 when new; one that exists is left as it is (the files are written 0600; review
 * 2026-12-07: `--output .` turned the working directory 0700 without a word), unless others may write in it: they
 * could swap ca.pem and read the credential off the wire, so that is refused.
 */
function privateDir(dir: string): void {
  let mode: number;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mode = statSync(dir).mode;
  } catch (err) {
    throw inputError(`cannot make ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o022) !== 0) {
    throw inputError(`other users may write in ${dir} (mode ${(mode & 0o777).toString(8)}), which would hold a credential: choose another directory, or run chmod go-w ${sh(dir)}`);
  }
}

const sh = (word: string): string => (/^[\w@%+=:,./~-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * Whether the gateway's certificate verifies with `ca` (undefined: this machine's default trust). A gateway that does
 * not answer is not an error (the files can be written before it runs); one whose certificate does not verify is.
 */
function checkGatewayTls(root: string, ca: Buffer | undefined): Promise<{ ok: true } | { ok: false; untrusted: boolean; reason: string }> {
  return new Promise((resolve) => {
    const req = https.get(`${root}/healthz`, { timeout: 10_000, ...(ca !== undefined ? { ca } : {}) }, (res) => {
      res.resume();
      resolve({ ok: true });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, untrusted: isUntrustedIssuer(err) || err.code === 'ERR_TLS_CERT_ALTNAME_INVALID', reason: err.code ?? err.message }));
  });
}

function runDocker(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('docker', [...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(inputError(`docker ${args.slice(2, 4).join(' ')} failed: ${(stderr || err.message).trim().split('\n')[0] ?? ''}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (is the docker CLI installed?)' : ''}`));
    });
  });
}

/** Makes a credential, with access rules where this Keystone has them (Train and later); says when it could not restrict it. */
async function createCredential(
  api: IdentityApi,
  owner: TokenOwner,
  name: string,
  serviceType: string,
  warn: (line: string) => void,
): Promise<{ id: string; secret: string }> {
  const description = `zun-gateway docker-config for project ${owner.projectName}: the docker CLI's HttpHeaders`;
  try {
    return await api.createApplicationCredential(owner.userId, { name, description, access_rules: dockerAccessRules(serviceType) });
  } catch (err) {
    // A Keystone before Train rejects the unknown property; the credential is then the user's project role, unrestricted.
    if (!(hasCode(err, 'client_input')) || !/HTTP 400/.test(err.message) || !/access_rules/i.test(err.message)) throw err;
    warn('this Keystone has no access rules: the credential is not restricted to the gateway; keep config.json as secret as a password');
    return api.createApplicationCredential(owner.userId, { name, description });
  }
}

/**
 * `zun-gateway docker-config --output DIR`: an application credential of the user for their project, named for this
 * gateway and restricted to its /docker paths, in DIR/config.json (HttpHeaders: Basic id:secret, which the gateway
 * exchanges for tokens and renews); the gateway's CA as DIR/ca.pem; the lines to export on stdout. Made once and
 * reused, by name, while DIR/config.json holds its secret. Never the password; files 0600, DIR 0700.
 */
export async function runDockerConfig(
  opts: DockerConfigCommandOptions,
  env: Env,
  io: CommandIo,
  deps: DockerConfigDeps = {},
  tokenOptions: UserTokenOptions = {},
): Promise<number> {
  const say = (line: string): void => io.err(`zun-gateway docker-config: ${line}\n`);
  const warn = (line: string): void => say(`warning: ${line}`);
  try {
    const dir = path.resolve(opts.output);
    const home = env.HOME !== undefined && env.HOME !== '' ? path.resolve(env.HOME) : undefined;
    if (home !== undefined && dir === path.join(home, '.docker')) {
      throw inputError(`--output ${opts.output} is docker's default configuration directory: its HttpHeaders would go to every Docker engine you use; choose a directory of its own, e.g. ~/.docker/zun-gateway`);
    }
    if (opts.context !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/.test(opts.context)) {
      throw inputError('--context must be a docker context name: letters, digits, and _ . + - after the first');
    }
    const serviceType = opts.serviceType ?? DEFAULT_SERVICE_TYPE;
    const server = opts.server ?? (await serverFromCatalog(env, serviceType, tokenOptions));
    if (!URL.canParse(server) || new URL(server).protocol !== 'https:') {
      throw inputError('--server must be an https:// URL such as https://gateway.example:8443: the docker CLI sends the credential only over TLS here');
    }
    const configFile = path.join(dir, 'config.json');
    const session = identitySession(env, tokenOptions);

    if (opts.revoke === true) {
      const existing = readConfigJson(configFile);
      const headers = headersOf(existing);
      const inFile = basicOf(headers.Authorization);
      const deleted = await session.run(async (api) => {
        const owner = await api.owner();
        const named = await api.applicationCredentials(owner.userId, credentialName(server, owner.projectId));
        const ids = [...new Set([...named.map((c) => c.id), ...(inFile !== undefined ? [inFile.id] : [])])];
        for (const id of ids) await api.deleteApplicationCredential(owner.userId, id);
        return ids;
      });
      if (inFile !== undefined) {
        delete headers.Authorization;
        writePrivate(configFile, `${JSON.stringify({ ...existing, HttpHeaders: headers }, null, 2)}\n`);
      }
      say(deleted.length > 0 ? `deleted the application credential ${deleted.join(', ')}; ${configFile} no longer holds it` : 'no application credential of this gateway and project to delete');
      return 0;
    }

    let ca = opts.certificateAuthority !== undefined ? readCa(opts.certificateAuthority) : undefined;
    const root = gatewayUrls(server).root;
    const check = await checkGatewayTls(root, ca);
    if (!check.ok && check.untrusted) {
      throw inputError(
        ca !== undefined
          ? `the gateway at ${root} does not verify with --certificate-authority ${opts.certificateAuthority} (${check.reason}): ask the operator for the CA that signed its certificate`
          : `the gateway's certificate at ${root} is not trusted by this machine (${check.reason}): pass --certificate-authority <the CA the operator gives you; a gateway started without configuration prints its path>`,
      );
    }
    if (!check.ok) warn(`the gateway at ${root} did not answer (${check.reason}); writing the files anyway`);
    // A certificate a public CA signed: the same roots Node trusts, so that docker-py (which insists on ca.pem) does too.
    ca ??= Buffer.from(tls.rootCertificates.join('\n'));

    // Before any credential is made: a directory that cannot hold it must not leave one behind in Keystone.
    privateDir(dir);
    const existing = readConfigJson(configFile);
    const headers = headersOf(existing);
    const inFile = basicOf(headers.Authorization);
    const credential = await session.run(async (api) => {
      const owner = await api.owner();
      if (owner.applicationCredentialId !== undefined) {
        throw inputError(`you are logged in with an application credential (${owner.applicationCredentialId}), and Keystone lets those make no others: log in with your password (OS_PASSWORD or a clouds.yaml password) for this command`);
      }
      const name = credentialName(server, owner.projectId);
      const named = await api.applicationCredentials(owner.userId, name);
      const reusable = named.find((c) => c.id === inFile?.id);
      if (reusable !== undefined && inFile !== undefined) {
        say(`reusing the application credential '${name}' (${reusable.id}) of ${owner.userName} for project ${owner.projectName}`);
        return inFile;
      }
      for (const old of named) {
        // Its secret was shown once, at creation, and is not in this config.json: only a new one can be written.
        await api.deleteApplicationCredential(owner.userId, old.id);
        say(`replaced the application credential ${old.id}: its secret is not in ${configFile}`);
      }
      const made = await createCredential(api, owner, name, serviceType, warn);
      say(`created the application credential '${name}' (${made.id}) of ${owner.userName} for project ${owner.projectName}, for ${serviceType} /docker only`);
      return { id: made.id, secret: made.secret };
    });

    // A token beside the credential would be refused (the gateway takes one credential per request).
    delete headers['X-Auth-Token'];
    headers.Authorization = `Basic ${Buffer.from(`${credential.id}:${credential.secret}`).toString('base64')}`;
    writePrivate(configFile, `${JSON.stringify({ ...existing, HttpHeaders: headers }, null, 2)}\n`);
    writePrivate(path.join(dir, 'ca.pem'), ca.toString('utf8'));
    if (!existsSync(path.join(dir, 'cert.pem')) || !existsSync(path.join(dir, 'key.pem'))) {
      const placeholder = placeholderClientCertificate();
      writePrivate(path.join(dir, 'key.pem'), placeholder.key);
      writePrivate(path.join(dir, 'cert.pem'), placeholder.cert);
    }
    const host = dockerHost(server);
    if (opts.context !== undefined) {
      const docker = deps.docker ?? runDocker;
      const endpoint = `host=${host},ca=${path.join(dir, 'ca.pem')},cert=${path.join(dir, 'cert.pem')},key=${path.join(dir, 'key.pem')}`;
      await docker(['--config', dir, 'context', 'create', opts.context, '--docker', endpoint]).catch(() =>
        docker(['--config', dir, 'context', 'update', opts.context as string, '--docker', endpoint]),
      );
      await docker(['--config', dir, 'context', 'use', opts.context]);
      say(`docker context '${opts.context}' in ${dir} is the current one there; docker-py and docker-compose read DOCKER_HOST instead: export DOCKER_HOST=${sh(host)} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${sh(dir)}`);
      io.out(`export DOCKER_CONFIG=${sh(dir)}\n`);
    } else {
      io.out(`export DOCKER_HOST=${sh(host)} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${sh(dir)} DOCKER_CONFIG=${sh(dir)}\n`);
    }
    return 0;
  } catch (e) {
    io.err(`zun-gateway docker-config: ${failureMessage(e)}\n`);
    return 1;
  }
}
