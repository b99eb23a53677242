import { PROJECT_LABEL } from './tenancy.js';

/**
 * Cluster-scoped reads a tenant's tools start with (`kubectl get namespaces`, k9s, Lens, Headlamp), which RBAC in a
 * project namespace cannot grant: the gateway answers them with its own identity and a selector it composes, so the
 * tenant sees its project's namespaces and nothing else (capsule-proxy's job, without its two escapes: a second
 * `labelSelector` and an empty one, invariants.md 34). And `kubectl auth whoami` on apiservers without
 * SelfSubjectReview. Pure: what to ask or answer; routes/k8s.ts does it.
 */

const NAMESPACES = /^\/api\/v1\/namespaces\/?$/;
const WATCH_NAMESPACES = /^\/api\/v1\/watch\/namespaces\/?$/;
const ONE_NAMESPACE = /^\/api\/v1\/namespaces\/([^/]+)\/?$/;

/** The path without its query (every request is asked whether it is one of these views: the query is read only for one). */
function routeOf(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** Every labelSelector the client sent, ANDed, and the project's own requirement after them: nothing can widen it. */
export function composeSelector(query: URLSearchParams, projectId: string): URLSearchParams {
  const out = new URLSearchParams();
  const clientSelectors: string[] = [];
  for (const [key, value] of query) {
    if (key === 'labelSelector') {
      if (value.trim() !== '') clientSelectors.push(value);
    } else out.append(key, value);
  }
  out.set('labelSelector', [...clientSelectors, `${PROJECT_LABEL}=${projectId}`].join(','));
  return out;
}

/** `GET /api/v1/namespaces` (a list or `?watch`), or the legacy `/api/v1/watch/namespaces`: the project's view of it. */
export function projectNamespacesPath(method: string, path: string, projectId: string): string | undefined {
  if (method !== 'GET') return undefined;
  const route = routeOf(path);
  if (!NAMESPACES.test(route) && !WATCH_NAMESPACES.test(route)) return undefined;
  const query = new URLSearchParams(path.slice(route.length + 1));
  return `${route}?${composeSelector(query, projectId).toString()}`;
}

/** `GET /api/v1/namespaces/<name>`: the namespace it names (decoded), or undefined for any other request. */
export function namespaceRead(method: string, path: string): string | undefined {
  if (method !== 'GET') return undefined;
  const m = ONE_NAMESPACE.exec(routeOf(path));
  if (m === null) return undefined;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return undefined;
  }
}

/** What the apiserver answers for a namespace that does not exist, as another project's looks to a tenant. */
export function namespaceNotFound(name: string): { status: number; body: unknown } {
  return {
    status: 404,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `namespaces "${name}" not found`, reason: 'NotFound', details: { name, kind: 'namespaces' }, code: 404 },
  };
}

const SELF_SUBJECT_REVIEW = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1|v1alpha1)\/selfsubjectreviews\/?$/;

/** The version of a `kubectl auth whoami` request (`POST .../selfsubjectreviews`), or undefined. */
export function selfSubjectReviewVersion(method: string, path: string): string | undefined {
  if (method !== 'POST') return undefined;
  return SELF_SUBJECT_REVIEW.exec(routeOf(path))?.[1];
}

/**
 * A SelfSubjectReview as the apiserver would answer it for the impersonated identity: exactly the user, groups and
 * extras the gateway sends (the Impersonate-* lines), and `system:authenticated`, which the apiserver adds to every
 * impersonated user.
 */
export function selfSubjectReview(version: string, identityLines: readonly string[]): { status: number; body: unknown } {
  let username = '';
  const groups: string[] = [];
  const extra: Record<string, string[]> = {};
  for (let i = 0; i < identityLines.length; i += 2) {
    const name = (identityLines[i] as string).toLowerCase();
    const value = identityLines[i + 1] as string;
    if (name === 'impersonate-user') username = value;
    else if (name === 'impersonate-group') groups.push(value);
    else if (name.startsWith('impersonate-extra-')) (extra[name.slice('impersonate-extra-'.length)] ??= []).push(value);
  }
  if (!groups.includes('system:authenticated')) groups.push('system:authenticated');
  return {
    status: 201,
    body: {
      kind: 'SelfSubjectReview',
      apiVersion: `authentication.k8s.io/${version}`,
      metadata: { creationTimestamp: null },
      status: { userInfo: { username, groups, ...(Object.keys(extra).length > 0 ? { extra } : {}) } },
    },
  };
}

/**
 * What the gateway's view answers a SelfSubjectAccessReview about reading namespaces (`kubectl auth can-i list
 * namespaces`): allowed for the collection and the project's own namespace, denied for another one by name (it looks
 * missing); undefined for any other question, which is the apiserver's. The review's namespace is not read: namespaces
 * are cluster-scoped, and kubectl sends its context's namespace (or `default`) with every can-i unless `-A`.
 */
export function namespaceReadReview(review: unknown, own: string): boolean | undefined {
  const attributes = (review as { spec?: { resourceAttributes?: Record<string, unknown> } } | null)?.spec?.resourceAttributes;
  if (attributes === undefined || attributes === null) return undefined;
  const group = attributes.group ?? '';
  const reads = group === '' && attributes.resource === 'namespaces' && ['get', 'list', 'watch'].includes(String(attributes.verb)) && (attributes.subresource ?? '') === '';
  if (!reads) return undefined;
  const name = attributes.name ?? '';
  return name === '' || name === own;
}
