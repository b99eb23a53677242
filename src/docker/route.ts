import type { IncomingMessage } from 'node:http';
import { isLongLived, matchEndpoint, namedObject, type Matched } from './policy.js';

/** A request to the Docker API as the adapter reads it. */
export interface DockerRoute {
  readonly method: string;
  /** `v1.47`, or undefined for unversioned paths. */
  readonly version: string | undefined;
  /** Decoded segments after the version. */
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
  /** The endpoint, when the gateway serves one at this path. */
  readonly matched: Matched | undefined;
  /**
   * Why the path is not served, said only once the caller is known: strangers learn nothing about the policy.
   * Exactly one of `matched` and `refusal` is set.
   */
  readonly refusal: unknown;
}

/** Decoded path segments below the mount (`/docker`), and the raw query. */
export interface MountTarget {
  readonly segments: readonly string[];
  readonly rest: string;
}

/** The route of a request under the Docker mount: version prefix, segments, query, the endpoint it is for. */
export function dockerRoute(req: IncomingMessage, target: MountTarget): DockerRoute {
  const segments = target.segments.slice(1).filter((s, i, all) => !(s === '' && i === all.length - 1));
  const version = segments[0] !== undefined && /^v\d+\.\d+$/.test(segments[0]) ? segments[0] : undefined;
  const q = target.rest.indexOf('?');
  const route = version !== undefined ? segments.slice(1) : segments;
  const method = req.method ?? 'GET';
  let matched: Matched | undefined;
  let refusal: unknown;
  try {
    matched = matchEndpoint(method, route);
  } catch (err) {
    refusal = err;
  }
  return { method, version, segments: route, query: new URLSearchParams(q === -1 ? '' : target.rest.slice(q + 1)), matched, refusal };
}

/** What the audit record says of a route. */
export function routeFacts(route: DockerRoute): { object: string | undefined; longLived: boolean } {
  const { matched } = route;
  return matched === undefined ? { object: undefined, longLived: false } : { object: namedObject(matched, route.query), longLived: isLongLived(matched, route.query) };
}

/** The engine path: normalized segments (the object reference replaced by its resolved id), the query re-encoded. */
export function enginePath(route: DockerRoute, segments: readonly string[], query: URLSearchParams): string {
  const path = `/${[...(route.version !== undefined ? [route.version] : []), ...segments].map(encodeURIComponent).join('/')}`;
  const q = query.toString();
  return q === '' ? path : `${path}?${q}`;
}

/** A first path segment of the Docker Engine API (`_ping`, `v1.41`, `containers` ...), never one of Kubernetes'. */
export function isDockerApiRoot(segment: string): boolean {
  return segment === '_ping' || /^v\d+\.\d+$/.test(segment) || ['containers', 'images', 'exec', 'volumes', 'networks', 'events', 'info'].includes(segment);
}

export const DOCKER_PREFIX_HINT = 'Docker API paths are under /docker on this gateway: set DOCKER_HOST=tcp://<gateway host>:<port>/docker';

/** The docker CLI has no login for this: its HttpHeaders setting sends the credential with every request. */
export const DOCKER_CREDENTIAL_HELP =
  'the docker CLI sends one from ~/.docker/config.json: {"HttpHeaders": {"X-Auth-Token": "<openstack token issue -f value -c id>"}}, or an application credential as {"HttpHeaders": {"Authorization": "Basic <base64 of id:secret>"}}';
