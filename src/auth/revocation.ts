import { z } from 'zod';

/**
 * Keystone's revocation events (GET /v3/OS-REVOKE/events), and which cached tokens they revoke. The matching is
 * Keystone's own (keystone/revoke/backends/sql.py `_list_token_events` and keystone/models/revoke_model.py `matches`):
 * an event revokes a token issued at or before its `issued_before` when every attribute the event names matches the
 * token (a user through the token's user, trustor or trustee; a domain through the user's or the scope's domain; a
 * role among the token's roles).
 */

const optional = z.string().nullish();
const eventSchema = z.looseObject({
  issued_before: z.string(),
  revoked_at: z.string().optional(),
  user_id: optional,
  project_id: optional,
  audit_id: optional,
  audit_chain_id: optional,
  domain_id: optional,
  domain_scope_id: optional,
  role_id: optional,
  trust_id: optional,
  consumer_id: optional,
  expires_at: optional,
});
export const revocationEventsSchema = z.object({ events: z.array(eventSchema) });
export type RevocationEvent = z.infer<typeof eventSchema>;

/** What of a token its revocation can be decided on, from Keystone's description of it (kept beside the identity). */
export interface TokenFacts {
  readonly issuedAtMs: number;
  /** expires_at to the second, as events carry it. */
  readonly expiresAtSecond: number;
  readonly userId: string;
  readonly userDomainId: string | undefined;
  readonly projectId: string | undefined;
  /** The project's domain, or the domain of a domain-scoped token. */
  readonly scopeDomainId: string | undefined;
  readonly roleIds: readonly string[];
  readonly auditId: string | undefined;
  /** The audit id of the token this one was rescoped from (Keystone's parent audit id), if any. */
  readonly auditChainId: string | undefined;
  readonly trust?: { readonly id: string; readonly trustorId: string | undefined; readonly trusteeId: string | undefined };
  readonly consumerId?: string | undefined;
}

const time = (text: string): number => Date.parse(text);
const named = (value: string | null | undefined): value is string => value !== undefined && value !== null && value !== '';

/** Whether `event` revokes the token described by `facts`. */
export function revokes(event: RevocationEvent, facts: TokenFacts): boolean {
  if (!(time(event.issued_before) >= facts.issuedAtMs)) return false;
  if (named(event.user_id) && ![facts.userId, facts.trust?.trustorId, facts.trust?.trusteeId].includes(event.user_id)) return false;
  if (named(event.project_id) && event.project_id !== facts.projectId) return false;
  if (named(event.audit_id) && event.audit_id !== facts.auditId) return false;
  if (named(event.domain_id) && event.domain_id !== facts.userDomainId && event.domain_id !== facts.scopeDomainId) return false;
  if (named(event.domain_scope_id) && event.domain_scope_id !== facts.scopeDomainId) return false;
  if (named(event.expires_at) && Math.floor(time(event.expires_at) / 1000) !== facts.expiresAtSecond) return false;
  if (named(event.trust_id) && event.trust_id !== facts.trust?.id) return false;
  if (named(event.consumer_id) && event.consumer_id !== facts.consumerId) return false;
  if (named(event.audit_chain_id) && event.audit_chain_id !== facts.auditChainId) return false;
  if (named(event.role_id) && !facts.roleIds.includes(event.role_id)) return false;
  return true;
}
