import { readFileSync } from 'node:fs';
import { tokenBodySchema, KeystoneClient } from '../auth/keystone-client.js';
import { GatewayError, hasCode, isCertificateRefusal } from '../errors.js';
import { describeWho, inputError, resolveInputs, type Env, type OpenStackInputs, type ResolveOptions } from '../config/openstack-inputs.js';
import { cacheDir, cacheFile, readCachedToken, withCacheLock, writeCachedToken, type CachedToken } from './token-file-cache.js';
import { EXEC_API_V1 } from './kubeconfig-document.js';

export { EXEC_API_V1 };
export const EXEC_API_V1BETA1 = 'client.authentication.k8s.io/v1beta1';
const KEYSTONE_TIMEOUT_MS = 15_000;

/** kubectl tells the plugin which ExecCredential version it wants in KUBERNETES_EXEC_INFO. */
export function requestedApiVersion(env: Env): string {
  const info = env.KUBERNETES_EXEC_INFO;
  if (info === undefined || info === '') return EXEC_API_V1;
  try {
    const apiVersion = (JSON.parse(info) as { apiVersion?: unknown }).apiVersion;
    return apiVersion === EXEC_API_V1BETA1 ? EXEC_API_V1BETA1 : EXEC_API_V1;
  } catch {
    return EXEC_API_V1;
  }
}

function expiryOf(body: unknown): string | undefined {
  const parsed = tokenBodySchema.safeParse(body);
  if (!parsed.success || Number.isNaN(Date.parse(parsed.data.token.expires_at))) return undefined;
  return parsed.data.token.expires_at;
}

export interface UserToken {
  readonly token: string;
  readonly expiresAt?: string | undefined;
}

/** A process asking again this soon for the token it was given is taken to have had it refused (userToken). */
export const ASKED_AGAIN_WITHIN_MS = 10 * 60_000;

export interface UserTokenOptions extends ResolveOptions {
  readonly now?: () => number;
  /**
   * The process running the plugin, when that is kubectl (client-go sets KUBERNETES_EXEC_INFO). client-go runs the
   * plugin once per process, and again only when the server answered 401: a cached token asked for again by the
   * process it was given to was refused (revoked, or Keystone lost it), so a new one is issued instead of handing
   * out the refused one until it expires.
   */
  readonly caller?: number;
  /** One-line warnings that do not stop the command (the cache could not be written). */
  readonly warn?: (line: string) => void;
  /** A token Keystone just refused (a command's call met 401): a cached one that is this one is not handed out again. */
  readonly refusedToken?: string;
  /** How a run waits before it looks at another run's lock again (tests count the waits). Default: a timer. */
  readonly pause?: (ms: number) => Promise<unknown>;
}

/** Keystone answered the user's login, but with a failure: nothing the user can fix but to try again. */
const keystoneFailed = (message: string): GatewayError => new GatewayError('keystone_failed', message);

export function keystoneClient(inputs: OpenStackInputs & { authUrl: string }): KeystoneClient {
  let ca: Buffer | undefined;
  if (inputs.caFile !== undefined) {
    try {
      ca = readFileSync(inputs.caFile);
    } catch (err) {
      throw inputError(`cannot read the CA file ${inputs.caFile} (OS_CACERT or cacert): ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  return new KeystoneClient({ authUrl: inputs.authUrl, timeoutMs: KEYSTONE_TIMEOUT_MS, ...(ca ? { ca } : {}) });
}

/** OS_TOKEN is passed through; its expiry comes from Keystone when there is an auth URL to ask. */
async function givenToken(inputs: Extract<OpenStackInputs, { kind: 'token' }>): Promise<UserToken> {
  if (inputs.authUrl === undefined) return { token: inputs.token };
  const client = keystoneClient({ ...inputs, authUrl: inputs.authUrl });
  try {
    const res = await client.validateToken(inputs.token, inputs.token);
    if (res.status === 404 || res.status === 401) {
      throw inputError(`Keystone does not accept ${inputs.hint} (HTTP ${res.status}): it expired or was revoked; issue a new one (openstack token issue)`);
    }
    const expiresAt = res.status === 200 ? expiryOf(res.body) : undefined;
    return expiresAt !== undefined ? { token: inputs.token, expiresAt } : { token: inputs.token };
  } finally {
    client.close();
  }
}

async function authenticate(inputs: Extract<OpenStackInputs, { kind: 'authenticate' }>): Promise<UserToken & { expiresAt: string }> {
  const client = keystoneClient(inputs);
  try {
    const res = await client.authenticate(inputs.auth);
    const who = describeWho(inputs);
    if (res.status === 401) throw inputError(`Keystone rejected the credentials for ${who} (HTTP 401): check ${inputs.hint}`);
    if (res.status === 400) throw inputError(`Keystone could not read the authentication for ${who} (HTTP 400): check ${inputs.hint} and the domains`);
    if (res.status === 403) throw inputError(`Keystone refused a token to ${who} (HTTP 403): check ${inputs.hint}`);
    if (res.status === 404) throw inputError(`Keystone has no ${inputs.authUrl}/auth/tokens (HTTP 404): check OS_AUTH_URL (or auth_url)`);
    if (res.status >= 500) throw keystoneFailed(`Keystone failed (HTTP ${res.status})`);
    if (res.status !== 201 || res.subjectToken === undefined) {
      throw keystoneFailed(`Keystone answered HTTP ${res.status} without a token`);
    }
    const expiresAt = expiryOf(res.body);
    if (expiresAt === undefined) throw keystoneFailed('Keystone issued a token without an expiry');
    return { token: res.subjectToken, expiresAt };
  } finally {
    client.close();
  }
}

/**
 * A Keystone token for the user's OpenStack inputs, from the on-disk cache when one is still good for more than two
 * minutes: a burst of kubectl runs costs one authentication.
 */
export async function userToken(env: Env, options: UserTokenOptions = {}): Promise<UserToken> {
  const now = options.now ?? Date.now;
  const inputs = resolveInputs(env, options);
  if (inputs.kind === 'token') return givenToken(inputs);
  // The key holds the secret so that a changed password misses; only its hash ever reaches the disk.
  const file = cacheFile(env, { authUrl: inputs.authUrl, auth: inputs.auth });
  const { caller } = options;
  const cached = readCachedToken(file, now());
  const askedAgain = cached !== undefined && caller !== undefined && cached.servedTo?.caller === caller && now() - cached.servedTo.at < ASKED_AGAIN_WITHIN_MS;
  const refused = askedAgain || (cached !== undefined && cached.token === options.refusedToken);
  if (cached !== undefined && !refused) return served(file, cached, caller, now());
  return withCacheLock(
    file,
    now,
    () => {
      const again = readCachedToken(file, now());
      // Another run may have replaced the refused token meanwhile; the refused one is never handed out again.
      return again === undefined || again.token === cached?.token ? undefined : served(file, again, caller, now());
    },
    async () => {
      const issued = await authenticate(inputs);
      const token = caller === undefined ? issued : { ...issued, servedTo: { caller, at: now() } };
      try {
        writeCachedToken(file, token);
      } catch (err) {
        options.warn?.(
          `could not cache the token in ${cacheDir(env)} (${(err as NodeJS.ErrnoException).code ?? 'error'}): every run will authenticate`,
        );
      }
      return token;
    },
    ...(options.pause !== undefined ? [options.pause] : []),
  );
}

/** Notes in the cache which process `token` went to (best effort: only a re-run after a 401 needs it). */
function served(file: string, token: CachedToken, caller: number | undefined, at: number): UserToken {
  if (caller !== undefined && token.servedTo?.caller !== caller) {
    try {
      writeCachedToken(file, { token: token.token, expiresAt: token.expiresAt, servedTo: { caller, at } });
    } catch {
      /* a cache that cannot be written was warned about when the token was issued */
    }
  }
  return { token: token.token, expiresAt: token.expiresAt };
}

/** RFC 3339 in UTC, seconds precision, as client-go prints and parses it. */
function rfc3339(timestamp: string): string {
  return new Date(timestamp).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The ExecCredential kubectl reads from the plugin's stdout. */
export function execCredential(apiVersion: string, token: UserToken): string {
  return JSON.stringify({
    apiVersion,
    kind: 'ExecCredential',
    status: { token: token.token, ...(token.expiresAt !== undefined ? { expirationTimestamp: rfc3339(token.expiresAt) } : {}) },
  });
}

/** One line, no secret: what failed and what to do. */
export function failureMessage(e: unknown): string {
  let message: string;
  if (hasCode(e, 'client_input')) message = e.message;
  else if (hasCode(e, 'keystone_failed')) message = `${e.message}: try again later, or ask the cloud's operators`;
  else if (hasCode(e, 'keystone_unavailable', 'keystone_busy')) {
    message = isCertificateRefusal(e.cause)
      ? `${e.message}: set OS_CACERT (or cacert in clouds.yaml) to the CA of Keystone's certificate`
      : `${e.message}: check OS_AUTH_URL (or auth_url) and that Keystone is reachable`;
  } else message = `unexpected failure: ${e instanceof Error ? e.message : String(e)}`;
  return message.split('\n')[0] ?? message;
}

export interface CommandIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

/** `zun-gateway credential`: 0 and an ExecCredential on stdout, or 1 and one line on stderr (never a secret). */
export async function runCredential(env: Env, io: CommandIo, options: UserTokenOptions = {}): Promise<number> {
  const warn = (line: string): void => io.err(`zun-gateway credential: warning: ${line}\n`);
  try {
    const token = await userToken(env, { warn, ...options });
    io.out(`${execCredential(requestedApiVersion(env), token)}\n`);
    return 0;
  } catch (e) {
    io.err(`zun-gateway credential: ${failureMessage(e)}\n`);
    return 1;
  }
}
