import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GatewayError } from '../errors.js';

/** What a Keystone v3 authentication needs, however the inputs were given (config, OS_* variables, clouds.yaml). */
export type KeystoneAuthInputs =
  | {
      readonly method: 'password';
      readonly password: string;
      readonly userId?: string | undefined;
      readonly username?: string | undefined;
      readonly userDomainId?: string | undefined;
      readonly userDomainName?: string | undefined;
      readonly projectId?: string | undefined;
      readonly projectName?: string | undefined;
      readonly projectDomainId?: string | undefined;
      readonly projectDomainName?: string | undefined;
    }
  | {
      readonly method: 'application_credential';
      readonly secret: string;
      readonly id?: string | undefined;
      readonly name?: string | undefined;
      readonly userId?: string | undefined;
      readonly username?: string | undefined;
      readonly userDomainId?: string | undefined;
      readonly userDomainName?: string | undefined;
    };

export type Env = Readonly<Record<string, string | undefined>>;

// The OpenStack client's own configuration (OS_* variables, clouds.yaml), read the way the openstack CLI reads it:
// by the tenant's commands (credential, kubeconfig, docker-config) and by the gateway's zero-configuration start.

/**
 * How the user authenticates, from OS_* variables or clouds.yaml; a token given outright needs no authentication.
 * `hint` names where the inputs came from, in the words the user would look for (OS_PASSWORD, or the cloud's file),
 * for error messages.
 */
export type OpenStackInputs =
  | {
      readonly kind: 'authenticate';
      readonly authUrl: string;
      readonly auth: KeystoneAuthInputs;
      readonly caFile?: string | undefined;
      /** OS_REGION_NAME or the cloud's region_name: which region's endpoints the catalog is read for. */
      readonly regionName?: string | undefined;
      readonly hint: string;
    }
  | {
      readonly kind: 'token';
      readonly authUrl: string | undefined;
      readonly token: string;
      readonly caFile?: string | undefined;
      readonly regionName?: string | undefined;
      readonly hint: string;
    };

/** A missing or contradictory input: the message names it and says what to set. */
export const inputError = (message: string): GatewayError => new GatewayError('client_input', message);

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
/** YAML may give ids as numbers; the openstack client reads them as strings too. */
const yamlScalar = z.union([z.string(), z.number().transform(String)]);
const cloudSchema = z.object({
  auth_type: str,
  cacert: str,
  region_name: str,
  auth: z.record(z.string(), z.unknown()).default({}),
});
const cloudsFile = z.object({ clouds: z.record(z.string(), z.unknown()).default({}) });
const authUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://keystone.example:5000/v3' });

type CloudAuth = z.infer<typeof cloudAuth>;

/** The openstack client's search path for clouds.yaml and secure.yaml. */
function configDirs(env: Env, cwd: string): string[] {
  const home = env.HOME ?? '';
  const xdg = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : path.join(home, '.config');
  return [cwd, path.join(xdg, 'openstack'), '/etc/openstack'];
}

function findFile(env: Env, cwd: string, names: readonly string[]): string | undefined {
  for (const dir of configDirs(env, cwd)) {
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
    // The first line only: YAML errors quote the offending source line, which may hold a password.
    throw inputError(`cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = cloudsFile.safeParse(parsed ?? {});
  if (!result.success) throw inputError(`${file} has no 'clouds:' mapping`);
  return result.data.clouds;
}

/**
 * The clouds.yaml the openstack client would read (OS_CLIENT_CONFIG_FILE, else the search path) and the names of its
 * clouds, for telling someone without OS_CLOUD which they could choose. Undefined when there is none (or it is not
 * readable as clouds.yaml).
 */
export function cloudsFileFound(env: Env, cwd: string): { readonly file: string; readonly clouds: readonly string[] } | undefined {
  const explicit = env.OS_CLIENT_CONFIG_FILE !== undefined && env.OS_CLIENT_CONFIG_FILE !== '' ? env.OS_CLIENT_CONFIG_FILE : undefined;
  const file = explicit !== undefined ? (existsSync(explicit) ? explicit : undefined) : findFile(env, cwd, ['clouds.yaml', 'clouds.yml']);
  if (file === undefined) return undefined;
  try {
    return { file, clouds: Object.keys(readClouds(file)) };
  } catch {
    return undefined;
  }
}

function merge(base: unknown, over: unknown): unknown {
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return over ?? base;
}

interface CloudFromFiles {
  readonly authType: string | undefined;
  readonly cacert: string | undefined;
  readonly regionName: string | undefined;
  readonly auth: CloudAuth;
  readonly where: string;
}

/** The named cloud from clouds.yaml with secure.yaml merged over it (the openstack client's search path). */
function cloudFromFiles(env: Env, cwd: string, cloud: string): CloudFromFiles {
  const explicit = env.OS_CLIENT_CONFIG_FILE !== undefined && env.OS_CLIENT_CONFIG_FILE !== '' ? env.OS_CLIENT_CONFIG_FILE : undefined;
  if (explicit !== undefined && !existsSync(explicit)) throw inputError(`OS_CLIENT_CONFIG_FILE=${explicit} does not exist`);
  const cloudsPath = explicit ?? findFile(env, cwd, ['clouds.yaml', 'clouds.yml']);
  if (cloudsPath === undefined) {
    throw inputError(
      `OS_CLOUD=${cloud} but no clouds.yaml found (looked in ./, $XDG_CONFIG_HOME/openstack/ or ~/.config/openstack/, /etc/openstack/; or set OS_CLIENT_CONFIG_FILE)`,
    );
  }
  // secure.yaml: OS_CLIENT_SECURE_FILE, else beside clouds.yaml, else the standard places.
  const besideClouds = ['secure.yaml', 'secure.yml'].map((n) => path.join(path.dirname(cloudsPath), n)).find((f) => existsSync(f));
  const secureEnv = env.OS_CLIENT_SECURE_FILE !== undefined && env.OS_CLIENT_SECURE_FILE !== '' ? env.OS_CLIENT_SECURE_FILE : undefined;
  const securePath = secureEnv ?? besideClouds ?? findFile(env, cwd, ['secure.yaml', 'secure.yml']);
  const clouds = readClouds(cloudsPath);
  let entry = clouds[cloud];
  if (entry === undefined) {
    throw inputError(`cloud '${cloud}' is not in ${cloudsPath} (it has: ${Object.keys(clouds).join(', ') || 'none'}): check OS_CLOUD`);
  }
  if (securePath !== undefined && existsSync(securePath)) entry = merge(entry, readClouds(securePath)[cloud]);
  const parsed = cloudSchema.safeParse(entry);
  if (!parsed.success) throw inputError(`cloud '${cloud}' in ${cloudsPath} is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
  const auth: Record<string, string> = {};
  for (const key of Object.keys(cloudAuth.shape)) {
    const value = parsed.data.auth[key];
    if (value === undefined || value === null) continue;
    const scalar = yamlScalar.safeParse(value);
    if (!scalar.success) throw inputError(`cloud '${cloud}' in ${cloudsPath}: auth.${key} must be a string`);
    if (scalar.data !== '') auth[key] = scalar.data;
  }
  const cacert = parsed.data.cacert !== undefined ? path.resolve(path.dirname(cloudsPath), parsed.data.cacert) : undefined;
  return {
    authType: parsed.data.auth_type,
    cacert,
    regionName: parsed.data.region_name,
    auth: auth as CloudAuth,
    where: `cloud '${cloud}' in ${cloudsPath}`,
  };
}

/** OS_* variables in clouds.yaml's vocabulary, each with the variable's name. */
const ENV_NAMES: Readonly<Record<keyof CloudAuth, readonly string[]>> = {
  auth_url: ['OS_AUTH_URL'],
  username: ['OS_USERNAME'],
  user_id: ['OS_USER_ID'],
  password: ['OS_PASSWORD'],
  project_name: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'],
  project_id: ['OS_PROJECT_ID', 'OS_TENANT_ID'],
  tenant_name: [],
  tenant_id: [],
  user_domain_name: ['OS_USER_DOMAIN_NAME'],
  user_domain_id: ['OS_USER_DOMAIN_ID'],
  project_domain_name: ['OS_PROJECT_DOMAIN_NAME'],
  project_domain_id: ['OS_PROJECT_DOMAIN_ID'],
  domain_name: ['OS_DOMAIN_NAME'],
  domain_id: ['OS_DOMAIN_ID'],
  application_credential_id: ['OS_APPLICATION_CREDENTIAL_ID'],
  application_credential_name: ['OS_APPLICATION_CREDENTIAL_NAME'],
  application_credential_secret: ['OS_APPLICATION_CREDENTIAL_SECRET'],
  token: ['OS_TOKEN'],
};

function cloudAuthFromEnv(env: Env): Partial<Record<keyof CloudAuth, string>> {
  const out: Partial<Record<keyof CloudAuth, string>> = {};
  for (const [key, names] of Object.entries(ENV_NAMES) as Array<[keyof CloudAuth, readonly string[]]>) {
    const value = names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Keystone's v3 endpoint for an auth URL given with or without its version, as the openstack client accepts it. */
export function keystoneV3Url(raw: string, name: string): string {
  const checked = authUrlSchema.safeParse(raw);
  if (!checked.success) throw inputError(`${name} ${checked.error.issues[0]?.message ?? 'is not a URL'}`);
  const url = new URL(checked.data);
  const pathname = url.pathname.replace(/\/+$/, '');
  if (/\/v2(\.0)?$/.test(pathname)) throw inputError(`${name} points at Keystone's v2.0 API: use its /v3 endpoint`);
  url.pathname = /\/v3$/.test(pathname) ? pathname : `${pathname}/v3`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

type AuthMethod = 'password' | 'application_credential' | 'token';

/** auth_type / OS_AUTH_TYPE: the keystoneauth plugin names this command speaks. */
function methodOf(authType: string | undefined, a: CloudAuth): AuthMethod {
  if (authType !== undefined) {
    switch (authType.toLowerCase().replace(/[-_]/g, '')) {
      case 'password':
      case 'v3password':
        return 'password';
      case 'applicationcredential':
      case 'v3applicationcredential':
        return 'application_credential';
      case 'token':
      case 'v3token':
      case 'admintoken':
        return 'token';
      default:
        throw inputError(`auth_type '${authType}' is not supported: use v3password, v3applicationcredential or token`);
    }
  }
  if (a.token !== undefined) return 'token';
  if (a.application_credential_id !== undefined || a.application_credential_name !== undefined || a.application_credential_secret !== undefined) {
    return 'application_credential';
  }
  return 'password';
}

export interface ResolveOptions {
  /** Where ./clouds.yaml is looked for; the current directory by default. */
  readonly cwd?: string;
}

/**
 * Resolves the user's OpenStack credentials the way the openstack client does: OS_CLOUD selects a cloud from
 * clouds.yaml (secure.yaml merged over it) and OS_* variables override single keys.
 */
export function resolveInputs(env: Env, options: ResolveOptions = {}): OpenStackInputs {
  const cwd = options.cwd ?? process.cwd();
  const fromEnv = cloudAuthFromEnv(env);
  let authType = env.OS_AUTH_TYPE !== undefined && env.OS_AUTH_TYPE !== '' ? env.OS_AUTH_TYPE : undefined;
  let caFile = env.OS_CACERT !== undefined && env.OS_CACERT !== '' ? env.OS_CACERT : undefined;
  let regionName = env.OS_REGION_NAME !== undefined && env.OS_REGION_NAME !== '' ? env.OS_REGION_NAME : undefined;
  let a: CloudAuth = fromEnv;
  let cloud: CloudFromFiles | undefined;
  if (env.OS_CLOUD !== undefined && env.OS_CLOUD !== '') {
    cloud = cloudFromFiles(env, cwd, env.OS_CLOUD);
    authType ??= cloud.authType;
    caFile ??= cloud.cacert;
    regionName ??= cloud.regionName;
    a = { ...cloud.auth, ...fromEnv };
    a.project_name ??= cloud.auth.tenant_name;
    a.project_id ??= cloud.auth.tenant_id;
  }
  /** The name the user knows an input by: the OS_* variable, or the key of the cloud in its file. */
  const nameOf = (key: keyof CloudAuth): string =>
    cloud !== undefined && fromEnv[key] === undefined ? `auth.${key} of ${cloud.where}` : (ENV_NAMES[key][0] ?? key);
  const hintOf = (keys: ReadonlyArray<keyof CloudAuth>): string => {
    const names = keys.map(nameOf);
    return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  };

  const method = methodOf(authType, a);
  const authUrl = a.auth_url !== undefined ? keystoneV3Url(a.auth_url, nameOf('auth_url')) : undefined;
  if (method === 'token') {
    if (a.token === undefined) throw inputError(`auth_type ${authType ?? 'token'} needs a token: set OS_TOKEN`);
    return { kind: 'token', token: a.token, authUrl, caFile, regionName, hint: hintOf(['token']) };
  }
  if (authUrl === undefined) throw inputError('no Keystone URL: set OS_AUTH_URL, or OS_CLOUD with a clouds.yaml');
  const userDomainId = a.user_domain_id ?? (a.user_domain_name === undefined ? a.domain_id : undefined);
  const userDomainName = a.user_domain_name ?? a.domain_name;

  if (method === 'application_credential') {
    if (a.application_credential_secret === undefined) {
      throw inputError('application credential without a secret: set OS_APPLICATION_CREDENTIAL_SECRET');
    }
    if (a.application_credential_id === undefined) {
      if (a.application_credential_name === undefined) {
        throw inputError('set OS_APPLICATION_CREDENTIAL_ID (or OS_APPLICATION_CREDENTIAL_NAME with OS_USERNAME or OS_USER_ID)');
      }
      if (a.user_id === undefined && a.username === undefined) {
        throw inputError('OS_APPLICATION_CREDENTIAL_NAME needs its owner: set OS_USERNAME (with OS_USER_DOMAIN_NAME) or OS_USER_ID');
      }
    }
    const byName = a.application_credential_id === undefined;
    return {
      kind: 'authenticate',
      authUrl,
      caFile,
      regionName,
      hint: hintOf(
        byName
          ? ['application_credential_secret', 'application_credential_name', a.user_id !== undefined ? 'user_id' : 'username']
          : ['application_credential_secret', 'application_credential_id'],
      ),
      auth: {
        method: 'application_credential',
        secret: a.application_credential_secret,
        id: a.application_credential_id,
        ...(byName
          ? {
              name: a.application_credential_name,
              userId: a.user_id,
              username: a.user_id === undefined ? a.username : undefined,
              userDomainId: a.user_id === undefined ? userDomainId : undefined,
              userDomainName: a.user_id === undefined && userDomainId === undefined ? (userDomainName ?? 'Default') : undefined,
            }
          : {}),
      },
    };
  }

  if (a.password === undefined) {
    throw inputError('no credentials: set OS_PASSWORD (with OS_USERNAME), an application credential, OS_TOKEN or OS_CLOUD');
  }
  if (a.user_id === undefined && a.username === undefined) throw inputError('set OS_USERNAME or OS_USER_ID');
  if (a.project_id === undefined && a.project_name === undefined) {
    throw inputError('set OS_PROJECT_NAME or OS_PROJECT_ID: the gateway needs a project-scoped token');
  }
  const projectDomainId = a.project_domain_id ?? (a.project_domain_name === undefined ? a.domain_id : undefined);
  return {
    kind: 'authenticate',
    authUrl,
    caFile,
    regionName,
    hint: hintOf(['password', a.user_id !== undefined ? 'user_id' : 'username', a.project_id !== undefined ? 'project_id' : 'project_name']),
    auth: {
      method: 'password',
      password: a.password,
      userId: a.user_id,
      username: a.user_id === undefined ? a.username : undefined,
      userDomainId: a.user_id === undefined ? userDomainId : undefined,
      userDomainName: a.user_id === undefined && userDomainId === undefined ? (userDomainName ?? 'Default') : undefined,
      projectId: a.project_id,
      projectName: a.project_id === undefined ? a.project_name : undefined,
      projectDomainId: a.project_id === undefined ? projectDomainId : undefined,
      projectDomainName:
        a.project_id === undefined && projectDomainId === undefined ? (a.project_domain_name ?? a.domain_name ?? 'Default') : undefined,
    },
  };
}

/** Who the inputs authenticate as, for messages: never a secret. */
export function describeWho(inputs: OpenStackInputs): string {
  if (inputs.kind === 'token') return 'OS_TOKEN';
  const auth = inputs.auth;
  if (auth.method === 'password') return `user ${auth.username ?? auth.userId ?? '?'}`;
  return `application credential ${auth.id ?? `${auth.name ?? '?'} of user ${auth.username ?? auth.userId ?? '?'}`}`;
}
