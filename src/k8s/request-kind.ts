/** What a Kubernetes API path says about the request, for the audit trail and the metrics. */

const NAMESPACED = /^\/(?:api\/[^/?]+|apis\/[^/?]+\/[^/?]+)(?:\/watch)?\/namespaces\/([^/?]+)(?:[/?]|$)/;

/**
 * The namespace a request addresses (`/api/v1/namespaces/<ns>/...`, `/apis/<group>/<version>/namespaces/<ns>/...`,
 * the legacy `/watch/` forms, or the namespace object itself); undefined for cluster-wide paths.
 */
export function namespaceOf(path: string): string | undefined {
  const m = NAMESPACED.exec(path);
  if (m === null) return undefined;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return m[1];
  }
}

/**
 * A boolean query parameter as the apiserver reads it (apimachinery's Convert_Slice_string_To_bool): absent, `0` or
 * `false` in any letter case is false, anything else, `yes` and the empty value included, is true. Reading only
 * `true` and `1` made `?watch=yes` a watch the gateway did not know of, which outlived its token's revocation.
 */
function apiserverBool(query: URLSearchParams, key: string): boolean {
  const value = query.get(key);
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

function routeAndSwitch(path: string): { route: string; on: (key: string) => boolean } {
  const q = path.indexOf('?');
  if (q < 0) return { route: path, on: () => false };
  const query = new URLSearchParams(path.slice(q + 1));
  return { route: path.slice(0, q), on: (key) => apiserverBool(query, key) };
}

const watching = ({ route, on }: ReturnType<typeof routeAndSwitch>): boolean =>
  /^\/(?:api\/[^/]+|apis\/[^/]+\/[^/]+)\/watch\//.test(route) || on('watch');

/** A watch: `?watch=true` or a `/watch/` path (deprecated, still served by 1.20). */
export function isWatch(path: string): boolean {
  return watching(routeAndSwitch(path));
}

/** A request whose response stays open for as long as the client wants: a watch, or `logs -f`. */
export function isLongLived(path: string): boolean {
  const parts = routeAndSwitch(path);
  return watching(parts) || (parts.route.endsWith('/log') && parts.on('follow'));
}

/** Discovery and OpenAPI: what every authenticated user may read, the same whoever asks. */
export function isDiscovery(path: string): boolean {
  const q = path.indexOf('?');
  const route = q < 0 ? path : path.slice(0, q);
  return /^\/(?:api(?:\/[^/]+)?|apis(?:\/[^/]+){0,2}|version|openapi(?:\/.*)?)\/?$/.test(route);
}
