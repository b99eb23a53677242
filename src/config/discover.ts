import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { hasCode } from '../errors.js';
import { configError, parseConfig } from './load.js';
import { cloudsFileFound, describeWho, inputError, resolveInputs, type Env } from './openstack-inputs.js';
import type { GatewayConfig } from './schema.js';
import { servingTlsFiles, type ServingTlsFiles } from './self-signed-tls.js';

/**
 * The zero-configuration start: with no configuration file, the gateway's settings come from what the machine already
 * has, found the way the usual tools find it (the openstack CLI, kubectl, the docker CLI). The result is the document
 * a configuration file would hold (`zun-gateway init` writes it, with comments), validated by the same schema.
 */

export const DEFAULT_PORT = 8443;
/** The address of a zero-configuration gateway: this machine only, until an operator writes a configuration. */
export const DISCOVERED_HOST = '127.0.0.1';
/** The names the self-made serving certificate is valid for. */
export const SERVING_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The variable `init` refers a clouds.yaml password by (the README's name for the gateway's password). */
export const PASSWORD_VARIABLE = 'GATEWAY_PASSWORD';

export interface DiscoverOptions {
  /** Where ./clouds.yaml is looked for. */
  readonly cwd: string;
  /** The Docker engine's socket when DOCKER_HOST is not set. */
  readonly defaultDockerSocket?: string;
  /** The in-cluster service account's files. */
  readonly serviceAccountDir?: string;
}

/** Where each part of the configuration came from, in words, for the start-up summary and init's comments. */
export interface Origins {
  readonly keystone: string;
  readonly k8s?: string;
  readonly docker?: string;
}

export interface Discovery {
  /**
   * The configuration as a file holds it: secrets as `${NAME}` of the variable they came from (or GATEWAY_PASSWORD for
   * one read from clouds.yaml), the port as `${ZUN_GATEWAY_PORT:-8443}`, every other `$` escaped as `$$`.
   */
  readonly document: Record<string, unknown>;
  /** Values for `${NAME}`s that no variable holds (a password read from clouds.yaml): for serving, never written. */
  readonly secrets: Readonly<Record<string, string>>;
  readonly origins: Origins;
  /** One line per thing not found, naming the variable or file to set. */
  readonly notFound: readonly string[];
  readonly tls: ServingTlsFiles;
}

const set = (env: Env, name: string): string | undefined => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
/** A value written into the document: `$` would start a placeholder when the document is read. */
const literal = (value: string): string => value.replace(/\$/g, '$$$$');
const home = (env: Env): string | undefined => set(env, 'HOME');

function isSocket(file: string): boolean {
  try {
    return statSync(file).isSocket();
  } catch {
    return false;
  }
}

/** $XDG_STATE_HOME/zun-gateway, else ~/.local/state/zun-gateway: where the self-made CA and certificate are kept. */
export function stateDir(env: Env): string {
  const xdg = set(env, 'XDG_STATE_HOME');
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'zun-gateway');
  const h = home(env);
  if (h === undefined) throw configError('neither XDG_STATE_HOME nor HOME is set: set one, for where the gateway keeps its certificate authority');
  return path.join(h, '.local', 'state', 'zun-gateway');
}

function checkVariables(env: Env): void {
  const port = set(env, 'ZUN_GATEWAY_PORT');
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) <= 65535)) {
    throw configError(`ZUN_GATEWAY_PORT=${port} is not a port number (0 to 65535)`);
  }
  const type = set(env, 'ZUN_GATEWAY_SERVICE_TYPE');
  if (type !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(type)) {
    throw configError(`ZUN_GATEWAY_SERVICE_TYPE=${type} is not a Keystone service type (letters, digits and dashes)`);
  }
}

/** The catalog service type (`register --type`): credentials with access rules for it are accepted. */
export function serviceType(env: Env): string {
  return set(env, 'ZUN_GATEWAY_SERVICE_TYPE') ?? 'zun-gateway';
}

function keystoneNotConfigured(env: Env, cwd: string): string {
  const clouds = cloudsFileFound(env, cwd);
  if (clouds !== undefined && clouds.clouds.length > 0) {
    return `Keystone: OS_CLOUD is not set: set it to one of the clouds of ${clouds.file} (${clouds.clouds.join(', ')}), or set OS_AUTH_URL with OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME`;
  }
  return (
    'Keystone: neither OS_CLOUD nor OS_AUTH_URL is set: set OS_CLOUD to a cloud of a clouds.yaml (looked for in ./, ' +
    '$XDG_CONFIG_HOME/openstack/ or ~/.config/openstack/, /etc/openstack/, or OS_CLIENT_CONFIG_FILE), or OS_AUTH_URL with ' +
    'OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (or an application credential: OS_APPLICATION_CREDENTIAL_ID and _SECRET)'
  );
}

/** The gateway's own Keystone identity: what `zun-gateway credential` would log in as, but one that can be renewed. */
function keystone(env: Env, cwd: string): { section: Record<string, unknown>; secrets: Record<string, string>; origin: string } | { missing: string } {
  if (set(env, 'OS_CLOUD') === undefined && set(env, 'OS_AUTH_URL') === undefined) return { missing: keystoneNotConfigured(env, cwd) };
  let inputs;
  try {
    inputs = resolveInputs(env, { cwd });
  } catch (err) {
    if (hasCode(err, 'client_input')) return { missing: `Keystone: ${err.message}` };
    throw err;
  }
  if (inputs.kind === 'token') {
    return { missing: `Keystone: ${inputs.hint} is a token, which expires: the gateway's own identity needs a password or an application credential it can log in with again (OS_PASSWORD, or OS_APPLICATION_CREDENTIAL_ID and _SECRET)` };
  }
  const secrets: Record<string, string> = {};
  /** `${OS_PASSWORD}` when the secret came from that variable; from clouds.yaml, `${GATEWAY_PASSWORD}` given at serve. */
  const secret = (variable: string, value: string): string => {
    if (set(env, variable) === value) return `\${${variable}}`;
    secrets[PASSWORD_VARIABLE] = value;
    return `\${${PASSWORD_VARIABLE}}`;
  };
  const auth = inputs.auth;
  let credentials: Record<string, string>;
  if (auth.method === 'application_credential') {
    if (auth.id === undefined) {
      return { missing: 'Keystone: an application credential given by name (OS_APPLICATION_CREDENTIAL_NAME) cannot be the gateway\'s identity: give its id (OS_APPLICATION_CREDENTIAL_ID)' };
    }
    credentials = { applicationCredentialId: literal(auth.id), applicationCredentialSecret: secret('OS_APPLICATION_CREDENTIAL_SECRET', auth.secret) };
  } else {
    credentials = {};
    const plain: Array<[string, string | undefined]> = [
      ['username', auth.username],
      ['userId', auth.userId],
      ['userDomainName', auth.userDomainName],
      ['userDomainId', auth.userDomainId],
      ['projectName', auth.projectName],
      ['projectId', auth.projectId],
      ['projectDomainName', auth.projectDomainName],
      ['projectDomainId', auth.projectDomainId],
    ];
    for (const [key, value] of plain) if (value !== undefined) credentials[key] = literal(value);
    credentials.password = secret('OS_PASSWORD', auth.password);
  }
  const cloud = set(env, 'OS_CLOUD');
  const source = cloud !== undefined ? `OS_CLOUD=${cloud} (${cloudsFileFound(env, cwd)?.file ?? 'clouds.yaml'})` : 'OS_* variables';
  return {
    section: {
      authUrl: literal(inputs.authUrl),
      serviceCredentials: credentials,
      ...(inputs.caFile !== undefined ? { caFile: literal(path.resolve(cwd, inputs.caFile)) } : {}),
      serviceType: '${ZUN_GATEWAY_SERVICE_TYPE:-zun-gateway}',
    },
    secrets,
    origin: `${inputs.authUrl} as ${describeWho(inputs)}, from ${source}`,
  };
}

/** Kubernetes as kubectl finds it: KUBECONFIG, else ~/.kube/config; else the in-cluster service account. */
function kubernetes(env: Env, options: DiscoverOptions): { section: Record<string, unknown>; origin: string } | { missing: string } {
  // Tenants get a namespace and role bindings per project, as the Helm chart's gateway does (the schema's defaults,
  // written out so that `init`'s file shows what to change).
  const tenancy = { namespaceTemplate: 'os-{project_name}', roleBindings: { admin: 'admin', member: 'edit', reader: 'view' } };
  const list = set(env, 'KUBECONFIG');
  if (list !== undefined) {
    const files = list.split(path.delimiter).filter((f) => f !== '');
    const file = files.find((f) => existsSync(f));
    if (file === undefined) return { missing: `/k8s is not served: KUBECONFIG=${list} names no file that exists` };
    const first = files.length > 1 ? ' (the first of KUBECONFIG\'s files that exists; the others are not merged in)' : '';
    return { section: { kubeconfig: literal(path.resolve(options.cwd, file)), tenancy }, origin: `the current context of ${path.resolve(options.cwd, file)}, from KUBECONFIG${first}` };
  }
  const h = home(env);
  const own = h !== undefined ? path.join(h, '.kube', 'config') : undefined;
  if (own !== undefined && existsSync(own)) return { section: { kubeconfig: literal(own), tenancy }, origin: `the current context of ${own}` };
  const sa = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (set(env, 'KUBERNETES_SERVICE_HOST') !== undefined && existsSync(path.join(sa, 'token'))) {
    return { section: { tenancy }, origin: 'the in-cluster service account' };
  }
  return {
    missing: `/k8s is not served: no Kubernetes found: set KUBECONFIG to a kubeconfig file, or create ${own ?? '~/.kube/config'}, or run the gateway in a pod with a service account`,
  };
}

/** The Docker engine as the docker CLI finds it: DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the default socket. */
function docker(env: Env, options: DiscoverOptions): { section: Record<string, unknown>; origin: string } | { missing: string } {
  const host = set(env, 'DOCKER_HOST');
  if (host === undefined) {
    const socket = options.defaultDockerSocket ?? DEFAULT_DOCKER_SOCKET;
    if (isSocket(socket)) return { section: { host: literal(`unix://${socket}`) }, origin: `unix://${socket}, the default socket` };
    return { missing: `/docker is not served: no Docker engine found: set DOCKER_HOST (unix:///path/to/docker.sock or tcp://host:2376), or start dockerd (there is no socket at ${socket})` };
  }
  if (host.startsWith('unix://')) {
    const socket = host.slice('unix://'.length);
    if (!path.isAbsolute(socket)) return { missing: `/docker is not served: DOCKER_HOST=${host}: the socket's path must be absolute (unix:///path/to/docker.sock)` };
    if (!isSocket(socket)) return { missing: `/docker is not served: DOCKER_HOST=${host}: there is no socket at ${socket} (is dockerd running?)` };
    return { section: { host: literal(host) }, origin: `${host}, from DOCKER_HOST` };
  }
  const tcp = /^tcp:\/\/([^/]+?)(:\d+)?\/?$/.exec(host);
  if (tcp === null) {
    return { missing: `/docker is not served: DOCKER_HOST=${host}: only unix:///path and tcp://host:port engines are supported` };
  }
  const verify = set(env, 'DOCKER_TLS_VERIFY') !== undefined;
  const address = `tcp://${tcp[1] as string}${tcp[2] ?? (verify ? ':2376' : ':2375')}`;
  if (!verify) return { section: { host: literal(address) }, origin: `${address} (plain TCP, no TLS), from DOCKER_HOST` };
  const h = home(env);
  const certPath = set(env, 'DOCKER_CERT_PATH') ?? (h !== undefined ? path.join(h, '.docker') : undefined);
  const certFile = (name: string): string | undefined => {
    const file = certPath !== undefined ? path.resolve(options.cwd, certPath, name) : undefined;
    return file !== undefined && existsSync(file) ? file : undefined;
  };
  const ca = certFile('ca.pem');
  if (ca === undefined) return { missing: `/docker is not served: DOCKER_TLS_VERIFY is set but there is no ca.pem in DOCKER_CERT_PATH (${certPath ?? '~/.docker'})` };
  const tls: Record<string, string> = { caFile: literal(ca) };
  const cert = certFile('cert.pem');
  const key = certFile('key.pem');
  if (cert !== undefined && key !== undefined) Object.assign(tls, { certFile: literal(cert), keyFile: literal(key) });
  return { section: { host: literal(address), tls }, origin: `${address} over TLS (${certPath ?? ''}), from DOCKER_HOST and DOCKER_TLS_VERIFY` };
}

/**
 * What the machine has, as a configuration. Throws a `config_invalid` GatewayError (exit 2) when there is no Keystone to check tokens
 * with: nothing could be served. Reads files, never writes (main.ts makes the certificate files).
 */
export function discover(env: Env, options: DiscoverOptions): Discovery {
  checkVariables(env);
  const tls = servingTlsFiles(stateDir(env));
  const ks = keystone(env, options.cwd);
  const k8s = kubernetes(env, options);
  const dk = docker(env, options);
  const notFound = [k8s, dk].flatMap((part) => ('missing' in part ? [part.missing] : []));
  if ('missing' in ks) {
    throw configError(['no configuration file, and no Keystone to check tokens with, so nothing can be served:', ks.missing, ...notFound].join('\n  '));
  }
  const document: Record<string, unknown> = {
    listen: {
      host: DISCOVERED_HOST,
      port: `\${ZUN_GATEWAY_PORT:-${DEFAULT_PORT}}`,
      tls: { certFile: literal(tls.cert), keyFile: literal(tls.key) },
    },
    keystone: ks.section,
    ...('section' in k8s ? { k8s: k8s.section } : {}),
    ...('section' in dk ? { docker: dk.section } : {}),
  };
  return {
    document,
    secrets: ks.secrets,
    origins: {
      keystone: ks.origin,
      ...('origin' in k8s ? { k8s: k8s.origin } : {}),
      ...('origin' in dk ? { docker: dk.origin } : {}),
    },
    notFound,
    tls,
  };
}

/** The discovered document, validated as a configuration file is: the same GatewayConfig a file with it would give. */
export function discoveredConfig(discovery: Discovery, env: Env): GatewayConfig {
  return parseConfig(stringify(discovery.document), { ...env, ...discovery.secrets }, 'the discovered configuration');
}
