import { tokenBodySchema, KeystoneClient, KeystoneUnavailableError } from '../auth/keystone-client.js';
import { InputError, resolveInputs, type Env } from './openstack-inputs.js';
import { cacheFile, readCachedToken, writeCachedToken, type CachedToken } from './token-file-cache.js';

export const EXEC_API_V1 = 'client.authentication.k8s.io/v1';
export const EXEC_API_V1BETA1 = 'client.authentication.k8s.io/v1beta1';

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
  return parsed.success ? parsed.data.token.expires_at : undefined;
}

/**
 * A project-scoped Keystone token for the user's OpenStack inputs, from the on-disk cache when one is still good
 * for more than two minutes: a burst of kubectl runs costs one authentication.
 */
export async function userToken(env: Env, now: number = Date.now()): Promise<CachedToken | { token: string; expiresAt?: undefined }> {
  const inputs = resolveInputs(env);
  if (inputs.kind === 'token') {
    if (inputs.authUrl === undefined) return { token: inputs.token };
    const res = await new KeystoneClient({ authUrl: inputs.authUrl, timeoutMs: 15_000 }).validateToken(inputs.token, inputs.token);
    if (res.status === 404 || res.status === 401) throw new InputError('OS_TOKEN is not valid (expired or revoked): issue a new one');
    const expiresAt = res.status === 200 ? expiryOf(res.body) : undefined;
    return expiresAt !== undefined ? { token: inputs.token, expiresAt } : { token: inputs.token };
  }
  const file = cacheFile(env, inputs);
  const cached = readCachedToken(file, now);
  if (cached !== undefined) return cached;
  const client = new KeystoneClient({ authUrl: inputs.authUrl, timeoutMs: 15_000 });
  try {
    const res = await client.authenticate(inputs.auth);
    if (res.status === 401) {
      const who = inputs.auth.method === 'password' ? `user ${inputs.auth.username ?? inputs.auth.userId}` : 'the application credential';
      const fix = inputs.auth.method === 'password' ? 'check OS_PASSWORD, OS_USERNAME and the domains' : 'check its id and secret';
      throw new InputError(`Keystone rejected the credentials of ${who} (HTTP 401): ${fix}`);
    }
    if (res.status !== 201 || res.subjectToken === undefined) {
      throw new InputError(`Keystone refused to issue a token (HTTP ${res.status}): check the project and domain names`);
    }
    const expiresAt = expiryOf(res.body);
    if (expiresAt === undefined) throw new InputError('Keystone issued a token without an expiry');
    const token = { token: res.subjectToken, expiresAt };
    writeCachedToken(file, token);
    return token;
  } finally {
    client.close();
  }
}

/** The ExecCredential kubectl reads from the plugin's stdout. */
export function execCredential(apiVersion: string, token: { token: string; expiresAt?: string | undefined }): string {
  return JSON.stringify({
    apiVersion,
    kind: 'ExecCredential',
    status: { token: token.token, ...(token.expiresAt !== undefined ? { expirationTimestamp: new Date(token.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}) },
  });
}

/** `zun-gateway credential`: 0 and an ExecCredential on stdout, or 1 and one line on stderr (never a secret). */
export async function runCredential(env: Env, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  try {
    out(`${execCredential(requestedApiVersion(env), await userToken(env))}\n`);
    return 0;
  } catch (e) {
    const message =
      e instanceof InputError
        ? e.message
        : e instanceof KeystoneUnavailableError
          ? `${e.message}; check OS_AUTH_URL`
          : `unexpected failure: ${(e as Error).message}`;
    err(`zun-gateway credential: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
