import { GatewayError } from '../errors.js';

/**
 * The Docker Engine API endpoints a tenant may use: an allow-list, not a deny-list (invariants.md 19, 20). Anything
 * not named here answers 403 with the reason. Paths are matched on decoded, normalized segments after the optional
 * `/v1.NN` version prefix.
 */

/** What the path's `{id}` names, so its ownership can be checked before anything is forwarded. */
export type ObjectKind = 'container' | 'exec' | 'volume' | 'network';

/** Bodies the adapter must read, check and rewrite before the engine sees them. */
export type BodyCheck = 'container-create' | 'container-update' | 'exec-create' | 'exec-start' | 'volume-create' | 'network-create' | 'network-connect' | 'registry-login';

export interface Endpoint {
  readonly methods: readonly string[];
  readonly pattern: readonly string[];
  readonly object?: ObjectKind;
  readonly body?: BodyCheck;
  /** A list whose results are filtered to the caller's project. */
  readonly list?: boolean;
  /** Answered by the adapter itself from the engine's answer. */
  readonly special?: 'info' | 'version' | 'image-pull' | 'image-list' | 'image-inspect' | 'container-create' | 'volume-create' | 'network-create';
  /** May (or must) be a hijacked / upgraded stream. */
  readonly upgrade?: boolean;
  /** Served without authentication (API version negotiation). */
  readonly anonymous?: boolean;
  /** Takes a body the engine reads as a stream (a tar archive), forwarded as it is. */
  readonly rawBody?: boolean;
  /** Reads a container's files: as much a write as exec is (a reader role may not). */
  readonly contents?: boolean;
}

const C = ['containers', ':id'];
export const SERVED_ENDPOINTS: readonly Endpoint[] = [
  { methods: ['GET', 'HEAD'], pattern: ['_ping'], anonymous: true },
  { methods: ['GET'], pattern: ['version'], special: 'version' },
  { methods: ['GET'], pattern: ['info'], special: 'info' },
  { methods: ['GET'], pattern: ['containers', 'json'], list: true },
  { methods: ['POST'], pattern: ['containers', 'create'], body: 'container-create', special: 'container-create' },
  { methods: ['GET'], pattern: [...C, 'json'], object: 'container' },
  ...['start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'wait', 'rename', 'resize'].map(
    (action): Endpoint => ({ methods: ['POST'], pattern: [...C, action], object: 'container' }),
  ),
  { methods: ['POST'], pattern: [...C, 'update'], object: 'container', body: 'container-update' },
  { methods: ['DELETE'], pattern: C, object: 'container' },
  ...['logs', 'stats', 'top', 'changes'].map((action): Endpoint => ({ methods: ['GET'], pattern: [...C, action], object: 'container' })),
  { methods: ['GET'], pattern: [...C, 'export'], object: 'container', contents: true },
  { methods: ['POST'], pattern: [...C, 'attach'], object: 'container', upgrade: true },
  { methods: ['GET', 'HEAD'], pattern: [...C, 'archive'], object: 'container', contents: true },
  { methods: ['PUT'], pattern: [...C, 'archive'], object: 'container', rawBody: true },
  { methods: ['POST'], pattern: [...C, 'exec'], object: 'container', body: 'exec-create' },
  { methods: ['POST'], pattern: ['exec', ':id', 'start'], object: 'exec', upgrade: true, body: 'exec-start' },
  { methods: ['POST'], pattern: ['exec', ':id', 'resize'], object: 'exec' },
  { methods: ['GET'], pattern: ['exec', ':id', 'json'], object: 'exec' },
  { methods: ['GET'], pattern: ['images', 'json'], special: 'image-list' },
  { methods: ['POST'], pattern: ['images', 'create'], special: 'image-pull' },
  { methods: ['GET'], pattern: ['volumes'], list: true },
  { methods: ['POST'], pattern: ['volumes', 'create'], body: 'volume-create', special: 'volume-create' },
  { methods: ['GET', 'DELETE'], pattern: ['volumes', ':id'], object: 'volume' },
  { methods: ['GET'], pattern: ['networks'], list: true },
  { methods: ['POST'], pattern: ['networks', 'create'], body: 'network-create', special: 'network-create' },
  { methods: ['GET', 'DELETE'], pattern: ['networks', ':id'], object: 'network' },
  { methods: ['POST'], pattern: ['networks', ':id', 'connect'], object: 'network', body: 'network-connect' },
  { methods: ['POST'], pattern: ['networks', ':id', 'disconnect'], object: 'network', body: 'network-connect' },
  { methods: ['GET'], pattern: ['events'], list: true },
  // docker login: the engine checks the credentials with the registry and keeps nothing; the registry is checked first.
  { methods: ['POST'], pattern: ['auth'], body: 'registry-login' },
];

/** Engine-wide or host-level areas, named in the refusal so the user knows it is policy, not a typo. */
const HOST_LEVEL: Readonly<Record<string, string>> = {
  build: 'image builds run on the host: build the image elsewhere (your own docker, a CI), push it to a registry and `docker pull` it here',
  session: 'build sessions run on the host: build the image elsewhere (your own docker, a CI), push it to a registry and `docker pull` it here',
  grpc: 'the engine gRPC endpoint is host-level',
  commit: 'committing creates engine-wide images',
  plugins: 'plugins are installed on the host',
  swarm: 'swarm is engine-wide',
  nodes: 'swarm is engine-wide',
  services: 'swarm is engine-wide',
  tasks: 'swarm is engine-wide',
  secrets: 'swarm is engine-wide',
  configs: 'swarm is engine-wide',
  system: 'system data is engine-wide',
  distribution: 'registry inspection is engine-wide',
};

export interface Matched {
  readonly endpoint: Endpoint;
  /** The `{id}` segment, when the pattern has one. */
  readonly id?: string;
  /** Image name for image inspect (names contain slashes). */
  readonly image?: string;
}

/** Not served to tenants (403), saying why. */
export const refused = (message: string): GatewayError => new GatewayError('forbidden', message);

function matches(pattern: readonly string[], route: readonly string[]): string | undefined | false {
  if (pattern.length !== route.length) return false;
  let id: string | undefined;
  for (let i = 0; i < pattern.length; i += 1) {
    if (pattern[i] === ':id') id = route[i];
    else if (pattern[i] !== route[i]) return false;
  }
  return id;
}

/** The endpoint a request is for, or a PolicyError saying why it is not served. */
export function matchEndpoint(method: string, route: readonly string[]): Matched {
  // Image names contain slashes: GET /images/{name...}/json
  if (method === 'GET' && route[0] === 'images' && route.length >= 3 && route[route.length - 1] === 'json') {
    return { endpoint: { methods: ['GET'], pattern: ['images', ':name', 'json'], special: 'image-inspect' }, image: route.slice(1, -1).join('/') };
  }
  for (const endpoint of SERVED_ENDPOINTS) {
    const id = matches(endpoint.pattern, route);
    if (id === false) continue;
    if (!endpoint.methods.includes(method)) continue;
    return id === undefined ? { endpoint } : { endpoint, id };
  }
  const what = `${method} /${route.join('/')}`;
  // A tenant has no plugins. `docker inspect <name>` probes every object type in turn and stops at the first error
  // that is not "not found", so this probe must look like a miss, as it is for the tenant.
  if (method === 'GET' && route[0] === 'plugins' && route.length === 3 && route[2] === 'json') {
    throw new GatewayError('not_found', `plugin "${route[1]}" not found`);
  }
  const first = route[0] ?? '';
  if (route[route.length - 1] === 'prune') throw refused(`${what} is not available through the gateway: prunes are engine-wide`);
  if (first === 'images') {
    throw refused(`${what} is not available through the gateway: images are shared by every tenant of the engine (pull, list and inspect are)`);
  }
  const hostReason = HOST_LEVEL[first];
  if (hostReason !== undefined) throw refused(`${what} is not available through the gateway: ${hostReason}`);
  throw refused(`${what} is not an endpoint the gateway serves to tenants`);
}

/**
 * The oldest Docker API version served. Older versions take settings where the gateway does not look for them: below
 * 1.24 `POST /containers/{id}/start` still applies a HostConfig from its body. 1.40 is the oldest the current docker
 * CLI speaks; clients negotiate the version from `_ping`.
 */
export const MIN_API_VERSION = { major: 1, minor: 40 } as const;

/** MIN_API_VERSION as the engine writes versions (`1.40`). */
export const MIN_API_VERSION_TEXT = `${MIN_API_VERSION.major}.${MIN_API_VERSION.minor}`;

/** Whether an engine's `1.NN` version text is older than MIN_API_VERSION (not a version: false). */
export function olderThanServed(version: unknown): boolean {
  if (typeof version !== 'string' || !/^\d+\.\d+$/.test(version)) return false;
  const [major, minor] = version.split('.').map(Number) as [number, number];
  return major < MIN_API_VERSION.major || (major === MIN_API_VERSION.major && minor < MIN_API_VERSION.minor);
}

/** Refuses a `/v1.NN` prefix older than MIN_API_VERSION (unversioned paths are the engine's own version). */
export function checkApiVersion(version: string | undefined): void {
  if (version === undefined) return;
  const text = version.slice(1);
  if (!olderThanServed(text)) return;
  const [major, minor] = text.split('.').map(Number) as [number, number];
  throw new GatewayError(
    'api_version_unsupported',
    `API version ${major}.${minor} is not served through the gateway, the oldest is ${MIN_API_VERSION_TEXT} (older versions take settings the gateway cannot check): use a current Docker client and let it negotiate the version (unset DOCKER_API_VERSION)`,
  );
}

/** Whether the endpoint changes something or reads a container's files, as opposed to listing and inspecting. */
export function writes(matched: Matched, method: string): boolean {
  return !(method === 'GET' || method === 'HEAD') || matched.endpoint.contents === true;
}

/** The object a matched request names, for the audit trail: `container:web`, `image:library/busybox`, `exec:<id>`. */
export function namedObject(matched: Matched, query: URLSearchParams): string | undefined {
  if (matched.image !== undefined) return `image:${matched.image}`;
  const { endpoint } = matched;
  if (endpoint.object !== undefined && matched.id !== undefined) return `${endpoint.object}:${matched.id}`;
  if (endpoint.special === 'image-pull') {
    const image = query.get('fromImage');
    return image === null ? undefined : `image:${image}${query.get('tag') ? `:${query.get('tag')}` : ''}`;
  }
  if (endpoint.special === 'container-create') {
    const name = query.get('name');
    return name === null ? 'container' : `container:${name}`;
  }
  return undefined;
}

/**
 * How long the engine may take before answering `stop` or `restart` with `t` seconds of grace (it answers when the
 * container is down): the grace plus a minute, when that is longer than `usual`; otherwise `usual`.
 */
export function responseWaitMs(matched: Matched, query: URLSearchParams, usual: number): number {
  const [first, , action] = matched.endpoint.pattern;
  const grace = Number(query.get('t') ?? query.get('timeout') ?? '');
  if (first !== 'containers' || (action !== 'stop' && action !== 'restart') || !Number.isFinite(grace) || grace <= 0 || usual === 0) return usual;
  return Math.max(usual, (grace + 60) * 1000);
}

/**
 * A boolean query parameter as dockerd reads it (httputils.BoolValue): `""`, `0`, `no`, `false` and `none` are false,
 * anything else true (`follow=yes` follows). Read without trimming, so a value the engine trims to a false one counts
 * as true here: a stream the engine does not keep open is only tracked for nothing, never the other way round.
 */
function engineBool(query: URLSearchParams, key: string, byDefault: boolean): boolean {
  const v = query.get(key);
  return v === null ? byDefault : !['', '0', 'no', 'false', 'none'].includes(v.toLowerCase());
}

/**
 * Responses that stay open while the client wants: events, `logs --follow`, streaming stats, wait, and an attach
 * without `Upgrade` (the engine hijacks the connection all the same and streams the container's output on it).
 */
export function isLongLived(matched: Matched, query: URLSearchParams): boolean {
  const [first, , action] = matched.endpoint.pattern;
  if (first === 'events') return true;
  if (first !== 'containers') return false;
  if (action === 'logs') return engineBool(query, 'follow', false);
  if (action === 'stats') return engineBool(query, 'stream', true);
  return action === 'wait' || action === 'attach';
}
