import { z } from 'zod';

/**
 * Keystone application credentials may carry access rules: the only requests their tokens may make, as (service
 * type, method, path). Keystone leaves enforcing them to the service (keystonemiddleware's auth_token does it for
 * OpenStack's services); the gateway does the same for its own service type (keystone.serviceType, the type
 * `zun-gateway register` puts in the catalog), so a credential made for its /docker paths works there and nowhere else.
 */

export const accessRuleSchema = z.object({ service: z.string(), method: z.string(), path: z.string() });
export type AccessRule = z.infer<typeof accessRuleSchema>;

/** What a request is, for its access-rule check: the method and the decoded path, as the mounts route it. */
export interface RequestLine {
  readonly method: string;
  readonly path: string;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * keystonemiddleware's `_path_matches`: `*` and `{name}` match one path segment's worth of characters (no `/`), `**`
 * matches anything, the rest is literal, and the whole path must match.
 */
export function pathMatches(path: string, pattern: string): boolean {
  let regex = '';
  for (const m of pattern.matchAll(/(\{[^}]*\})|(\*\*)|(\*)|([^{}*]+|[{}])/g)) {
    if (m[1] !== undefined || m[3] !== undefined) regex += '[^/]+';
    else if (m[2] !== undefined) regex += '.*';
    else regex += escape(m[4] ?? '');
  }
  return new RegExp(`^${regex}$`).test(path);
}

/** Whether a token with these rules may make this request of the service `serviceType` (keystonemiddleware's check). */
export function accessRulesAllow(rules: readonly AccessRule[], serviceType: string, request: RequestLine): boolean {
  return rules.some((r) => r.service === serviceType && r.method === request.method && pathMatches(request.path, r.path));
}

/** The rules in words, methods of one path and service together: "GET, HEAD /docker/** on zun-gateway". */
export function describeRules(rules: readonly AccessRule[]): string {
  const byTarget = new Map<string, string[]>();
  for (const r of rules) {
    const target = `${r.path} on ${r.service}`;
    byTarget.set(target, [...(byTarget.get(target) ?? []), r.method]);
  }
  return [...byTarget].map(([target, methods]) => `${methods.join(', ')} ${target}`).join('; ');
}
