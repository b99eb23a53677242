import { GatewayError } from '../errors.js';

/** Headers no request to the apiserver may carry, whoever added them: the caller's credentials, forwarding claims. */
const NEVER = new Set(['x-auth-token', 'x-subject-token', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip', 'forwarded', 'x-remote-user', 'x-remote-group']);
const NEVER_PREFIXES = ['x-remote-extra-'];

export interface ExpectedIdentity {
  /**
   * The Impersonate-* lines derived from the token (impersonation.ts), flat: exactly these, in this order. Empty only
   * for the gateway's own reads on a tenant's behalf (`asGateway`): then no Impersonate-* header at all.
   */
  readonly identityLines: readonly string[];
  readonly asGateway?: boolean;
  /** The gateway's own Authorization value, or undefined when it authenticates with a client certificate. */
  readonly authorization: string | undefined;
}

const violation = (reason: string): GatewayError => new GatewayError('outgoing_violation', `request to the apiserver not sent: ${reason}`);

/**
 * The invariants of a request about to leave for the apiserver, checked on the final header list (Pinniped's
 * impersonator does the same): exactly one Impersonate-User, the groups and extras derived from the token and no
 * others, no Impersonate-Uid, the gateway's own Authorization and no other, nothing of the caller's credentials or
 * forwarding claims. Whatever built the list, a request that breaks one of them is never sent.
 */
export function assertApiserverRequest(headers: readonly string[], expected: ExpectedIdentity): void {
  const identity: string[] = [];
  const authorization: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (lower.startsWith('impersonate-')) identity.push(lower, headers[i + 1] as string);
    else if (lower === 'authorization') authorization.push(headers[i + 1] as string);
    else if (NEVER.has(lower) || NEVER_PREFIXES.some((p) => lower.startsWith(p))) throw violation(`it carries ${headers[i]}`);
  }
  const want = expected.asGateway === true ? [] : expected.identityLines;
  if (expected.asGateway === true) {
    if (identity.length > 0) throw violation("the gateway's own read on a tenant's behalf carries Impersonate-* headers");
  } else if (want[0]?.toLowerCase() !== 'impersonate-user' || want.filter((_, i) => i % 2 === 0 && want[i]?.toLowerCase() === 'impersonate-user').length !== 1) {
    throw violation('the identity derived from the token does not name exactly one user');
  }
  if (identity.length !== want.length || identity.some((v, i) => (i % 2 === 0 ? v !== (want[i] as string).toLowerCase() : v !== want[i]))) {
    throw violation('its Impersonate-* headers are not exactly those derived from the token');
  }
  const own = expected.authorization;
  if (own === undefined ? authorization.length !== 0 : authorization.length !== 1 || authorization[0] !== own) {
    throw violation("its Authorization is not the gateway's own");
  }
}
