import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { KeystoneAuthInputs } from '../auth/auth-body.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** How the user authenticates, from OS_* variables or clouds.yaml; a token given outright needs no authentication. */
export type OpenStackInputs =
  | { readonly authUrl: string; readonly kind: 'authenticate'; readonly auth: KeystoneAuthInputs }
  | { readonly authUrl: string | undefined; readonly kind: 'token'; readonly token: string };

/** A missing or contradictory input: the message names it and says what to set. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

const str = z.string().min(1).optional();
const cloudAuth = z.object({
  auth_url: str,
  username: str,
  user_id: str,
  password: str,
  project_name: str,
  project_id: str,
  tenant_name: str,
  tenant_id: str,
  user_domain_name: str,
  user_domain_id: str,
  project_domain_name: str,
  project_domain_id: str,
  domain_name: str,
  domain_id: str,
  application_credential_id: str,
  application_credential_name: str,
  application_credential_secret: str,
  token: str,
});
const cloudSchema = z.object({ auth_type: str, auth: cloudAuth.default({}) });
const cloudsFile = z.object({ clouds: z.record(z.string(), z.unknown()).default({}) });

type CloudAuth = z.infer<typeof cloudAuth>;

function configDirs(env: Env): string[] {
  const home = env.HOME ?? '';
  const xdg = env.XDG_CONFIG_HOME ?? path.join(home, '.config');
  return [process.cwd(), path.join(xdg, 'openstack'), '/etc/openstack'];
}

function findFile(env: Env, explicit: string | undefined, names: readonly string[]): string | undefined {
  if (explicit !== undefined && explicit !== '') return explicit;
  for (const dir of configDirs(env)) {
    for (const name of names) {
      const file = path.join(dir, name);
      if (existsSync(file)) return file;
    }
  }
  return undefined;
}

function readClouds(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = cloudsFile.safeParse(parsed ?? {});
  if (!result.success) throw new InputError(`${file} has no 'clouds:' mapping`);
  return result.data.clouds;
}

function merge(base: unknown, over: unknown): unknown {
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return over ?? base;
}

/** The named cloud from clouds.yaml with secure.yaml merged over it (the openstack client's search path). */
function cloudAuthFromFiles(env: Env, cloud: string): { authType: string | undefined; auth: CloudAuth } {
  const cloudsPath = findFile(env, env.OS_CLIENT_CONFIG_FILE, ['clouds.yaml', 'clouds.yml']);
  if (cloudsPath === undefined) {
    throw new InputError(`OS_CLOUD=${cloud} but no clouds.yaml found (looked in ./, ~/.config/openstack/, /etc/openstack/; or set OS_CLIENT_CONFIG_FILE)`);
  }
  // secure.yaml sits beside clouds.yaml, or in the standard places.
  const besideClouds = ['secure.yaml', 'secure.yml'].map((n) => path.join(path.dirname(cloudsPath), n)).find((f) => existsSync(f));
  const securePath = findFile(env, env.OS_CLIENT_SECURE_FILE ?? besideClouds, ['secure.yaml', 'secure.yml']);
  const clouds = readClouds(cloudsPath);
  let entry = clouds[cloud];
  if (entry === undefined) {
    throw new InputError(`cloud '${cloud}' is not in ${cloudsPath} (it has: ${Object.keys(clouds).join(', ') || 'none'})`);
  }
  if (securePath !== undefined && existsSync(securePath)) entry = merge(entry, readClouds(securePath)[cloud]);
  const parsed = cloudSchema.safeParse(entry);
  if (!parsed.success) throw new InputError(`cloud '${cloud}' in ${cloudsPath} is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
  return { authType: parsed.data.auth_type, auth: parsed.data.auth };
}

/** OS_* variables in clouds.yaml's vocabulary (OS_PROJECT_NAME -> project_name). */
function cloudAuthFromEnv(env: Env): CloudAuth {
  const v = (name: string): string | undefined => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  return {
    auth_url: v('OS_AUTH_URL'),
    username: v('OS_USERNAME'),
    user_id: v('OS_USER_ID'),
    password: v('OS_PASSWORD'),
    project_name: v('OS_PROJECT_NAME') ?? v('OS_TENANT_NAME'),
    project_id: v('OS_PROJECT_ID') ?? v('OS_TENANT_ID'),
    user_domain_name: v('OS_USER_DOMAIN_NAME'),
    user_domain_id: v('OS_USER_DOMAIN_ID'),
    project_domain_name: v('OS_PROJECT_DOMAIN_NAME'),
    project_domain_id: v('OS_PROJECT_DOMAIN_ID'),
    domain_name: v('OS_DOMAIN_NAME'),
    domain_id: v('OS_DOMAIN_ID'),
    application_credential_id: v('OS_APPLICATION_CREDENTIAL_ID'),
    application_credential_name: v('OS_APPLICATION_CREDENTIAL_NAME'),
    application_credential_secret: v('OS_APPLICATION_CREDENTIAL_SECRET'),
    token: v('OS_TOKEN'),
  };
}

const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * Resolves the user's OpenStack credentials the way the openstack client does: OS_CLOUD selects a cloud from
 * clouds.yaml (secure.yaml merged over it) and OS_* variables override single keys.
 */
export function resolveInputs(env: Env): OpenStackInputs {
  const fromEnv = defined(cloudAuthFromEnv(env));
  let authType = env.OS_AUTH_TYPE;
  let a: CloudAuth = fromEnv;
  if (env.OS_CLOUD !== undefined && env.OS_CLOUD !== '') {
    const cloud = cloudAuthFromFiles(env, env.OS_CLOUD);
    authType ??= cloud.authType;
    a = { ...cloud.auth, ...fromEnv };
  }
  const authUrl = a.auth_url;
  if (a.token !== undefined && (authType === undefined || /token/.test(authType))) {
    return { kind: 'token', token: a.token, authUrl };
  }
  if (authUrl === undefined) throw new InputError('no Keystone URL: set OS_AUTH_URL or OS_CLOUD');
  const userDomainId = a.user_domain_id ?? (a.user_domain_name === undefined ? a.domain_id : undefined);
  const userDomainName = a.user_domain_name ?? a.domain_name;
  if (a.application_credential_secret !== undefined || a.application_credential_id !== undefined || /applicationcredential/.test(authType ?? '')) {
    if (a.application_credential_secret === undefined) throw new InputError('application credential without a secret: set OS_APPLICATION_CREDENTIAL_SECRET');
    if (a.application_credential_id === undefined) {
      if (a.application_credential_name === undefined) throw new InputError('set OS_APPLICATION_CREDENTIAL_ID (or _NAME with OS_USERNAME)');
      if (a.user_id === undefined && a.username === undefined) throw new InputError('OS_APPLICATION_CREDENTIAL_NAME needs OS_USERNAME or OS_USER_ID');
    }
    return {
      kind: 'authenticate',
      authUrl,
      auth: {
        method: 'application_credential',
        secret: a.application_credential_secret,
        id: a.application_credential_id,
        name: a.application_credential_name,
        userId: a.user_id,
        username: a.username,
        userDomainId,
        userDomainName: userDomainId === undefined ? (userDomainName ?? 'Default') : undefined,
      },
    };
  }
  if (a.password === undefined) throw new InputError('no credentials: set OS_PASSWORD (with OS_USERNAME), an application credential, OS_TOKEN or OS_CLOUD');
  if (a.user_id === undefined && a.username === undefined) throw new InputError('set OS_USERNAME or OS_USER_ID');
  if (a.project_id === undefined && a.project_name === undefined) {
    throw new InputError('set OS_PROJECT_NAME or OS_PROJECT_ID: the gateway needs a project-scoped token');
  }
  const projectDomainId = a.project_domain_id ?? (a.project_domain_name === undefined ? a.domain_id : undefined);
  return {
    kind: 'authenticate',
    authUrl,
    auth: {
      method: 'password',
      password: a.password,
      userId: a.user_id,
      username: a.username,
      userDomainId,
      userDomainName: a.user_id === undefined && userDomainId === undefined ? (userDomainName ?? 'Default') : undefined,
      projectId: a.project_id,
      projectName: a.project_name,
      projectDomainId,
      projectDomainName:
        a.project_id === undefined && projectDomainId === undefined ? (a.project_domain_name ?? a.domain_name ?? 'Default') : undefined,
    },
  };
}
