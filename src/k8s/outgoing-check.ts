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

const NOT_AS_DERIVED = 'its Impersonate-* headers are not exactly those derived from the token';
const violation = (reason: string): GatewayError => new GatewayError('outgoing_violation', `request to the apiserver not sent: ${reason}`);

/**
 * The invariants of a request about to leave for the apiserver, checked on the final header list (Pinniped's
 * impersonator does the same): exactly one Impersonate-User, the groups and extras derived from the token and no
 * others, no Impersonate-Uid, the gateway's own Authorization and no other, nothing of the caller's credentials or
 * forwarding claims. Whatever built the list, a request that breaks one of them is never sent.
 */
export function assertApiserverRequest(headers: readonly string[], expected: ExpectedIdentity): void {
  const want = expected.asGateway === true ? EMPTY : expected.identityLines;
  if (expected.asGateway !== true && !wellFormed(want)) throw violation("the identity derived from the token is not one user's Impersonate-* lines");
  // One pass that allocates nothing for the usual names (it runs for every request): the Impersonate-* lines must be
  // `want`, in order, and only a name that may be a forbidden one is lower-cased.
  let identity = 0;
  let authorizations = 0;
  let authorization: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    // The line as derived (the header list is built from the same strings): every name in `want` is an Impersonate-*
    // one (wellFormed), so this is the branch below without comparing letter by letter.
    if (name === want[identity]) {
      if (headers[i + 1] !== want[identity + 1]) throw violation(NOT_AS_DERIVED);
      identity += 2;
      continue;
    }
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x69 && name.length >= IMPERSONATE.length && sameLetters(name, IMPERSONATE, IMPERSONATE.length)) {
      if (expected.asGateway === true) throw violation("the gateway's own read on a tenant's behalf carries Impersonate-* headers");
      const wantName = want[identity];
      if (wantName === undefined || name.length !== wantName.length || !sameLetters(name, wantName, name.length) || headers[i + 1] !== want[identity + 1]) {
        throw violation(NOT_AS_DERIVED);
      }
      identity += 2;
    } else if (first === 0x61 && name.length === AUTHORIZATION.length && sameLetters(name, AUTHORIZATION, name.length)) {
      authorizations += 1;
      authorization = headers[i + 1];
    } else if (NEVER_FIRST.has(first)) {
      const lower = name.toLowerCase();
      if (NEVER.has(lower) || NEVER_PREFIXES.some((p) => lower.startsWith(p))) throw violation(`it carries ${name}`);
    }
  }
  if (identity !== want.length) throw violation(NOT_AS_DERIVED);
  const own = expected.authorization;
  if (own === undefined ? authorizations !== 0 : authorizations !== 1 || authorization !== own) {
    throw violation("its Authorization is not the gateway's own");
  }
}

const EMPTY: readonly string[] = [];
const IMPERSONATE = 'impersonate-';
const AUTHORIZATION = 'authorization';
/** The first letters (lower case) of every forbidden name and prefix: other names need no closer look. */
const NEVER_FIRST = new Set([...NEVER, ...NEVER_PREFIXES].map((n) => n.charCodeAt(0)));

/** Whether the first `n` characters of `a` and `b` are equal, ignoring ASCII case. */
function sameLetters(a: string, b: string, n: number): boolean {
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y && ((x | 0x20) !== (y | 0x20) || (x | 0x20) < 0x61 || (x | 0x20) > 0x7a)) return false;
  }
  return true;
}

/**
 * The derived lines start with Impersonate-User, name no other user, and are all Impersonate-* lines. A frozen list
 * (the mounts cache one per identity) is judged once.
 */
function wellFormed(lines: readonly string[]): boolean {
  if (judged.has(lines)) return true;
  if (!isUser(lines[0])) return false;
  for (let i = 0; i < lines.length; i += 2) {
    const name = lines[i] as string;
    if ((i > 0 && isUser(name)) || name.length < IMPERSONATE.length || !sameLetters(name, IMPERSONATE, IMPERSONATE.length)) return false;
  }
  if (Object.isFrozen(lines)) judged.add(lines);
  return true;
}
const judged = new WeakSet<readonly string[]>();
const IMPERSONATE_USER = 'impersonate-user';
const isUser = (name: string | undefined): boolean => name !== undefined && name.length === IMPERSONATE_USER.length && sameLetters(name, IMPERSONATE_USER, name.length);
