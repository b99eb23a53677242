import type { Identity } from '../auth/identity.js';
import type { DockerConfig } from '../config/schema.js';
import { refused, writes, type Matched } from './policy.js';

/**
 * A request the caller's Keystone roles allow: reading (list, inspect, logs) with a read role, anything else (create,
 * change, exec, copy files out) with a write role (`docker.roles`). Refuses with the roles the caller has and needs.
 */
export function authorize(matched: Matched, method: string, identity: Identity, roles: DockerConfig['roles']): void {
  const has = (wanted: readonly string[]): boolean => wanted.some((r) => identity.roles.includes(r));
  if (has(roles.write)) return;
  const held = identity.roles.length > 0 ? identity.roles.join(', ') : 'none';
  if (!has(roles.read)) {
    throw refused(`your roles in project ${identity.project.name} (${held}) do not allow the Docker API: it needs one of ${[...roles.write, ...roles.read].join(', ')}`);
  }
  if (writes(matched, method)) {
    throw refused(`your roles in project ${identity.project.name} (${held}) allow listing, inspecting and reading logs only: this needs one of ${roles.write.join(', ')}`);
  }
}
