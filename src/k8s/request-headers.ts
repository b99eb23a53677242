import { HOP_BY_HOP, connectionTokens } from '../proxy/hop-by-hop.js';
import { stripBearerSubprotocol } from '../auth/credentials.js';

/**
 * Headers a client must never get to the apiserver: credentials (ours are added after), impersonation, and the
 * front-proxy / forwarding headers the apiserver may trust or record (invariants.md 1, 6).
 */
const STRIPPED = new Set([
  'host',
  'authorization',
  'x-auth-token',
  'x-subject-token',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'forwarded',
  'x-remote-user',
  'x-remote-group',
]);
const STRIPPED_PREFIXES = ['impersonate-', 'x-remote-extra-'];

function isProtected(lowerName: string): boolean {
  return STRIPPED.has(lowerName) || STRIPPED_PREFIXES.some((p) => lowerName.startsWith(p));
}

export class HeaderPolicyError extends Error {
  override readonly name = 'HeaderPolicyError';
  readonly status = 400;
}

/** Connection may name only ordinary connection options; naming an identity header is an attack (invariants.md 2). */
function checkConnection(tokens: Set<string>): void {
  for (const token of tokens) {
    if (isProtected(token) && token !== 'host') {
      throw new HeaderPolicyError(`the Connection header may not name '${token}'`);
    }
  }
}

export interface OutgoingHeaderOptions {
  readonly hostHeader: string;
  /** The gateway's own Authorization for the apiserver, if it uses a token. */
  readonly authorization: string | undefined;
  /** Impersonate-* lines for the caller; never empty (see impersonation.ts). */
  readonly identityHeaders: readonly string[];
  readonly upgrade: boolean;
}

/**
 * The headers sent to the apiserver: the client's own headers minus hop-by-hop and protected ones, then the
 * gateway's identity and impersonation headers, added last so no client header can remove or shadow them.
 */
export function k8sRequestHeaders(rawHeaders: readonly string[], options: OutgoingHeaderOptions): string[] {
  const named = connectionTokens(rawHeaders);
  checkConnection(named);
  const out: string[] = ['Host', options.hostHeader];
  let chunked = false;
  let hasLength = false;
  let upgradeValue: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      chunked = true;
      continue;
    }
    if (lower === 'upgrade') {
      upgradeValue = value;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower) || isProtected(lower)) continue;
    if (lower === 'content-length') hasLength = true;
    if (lower === 'sec-websocket-protocol') {
      const kept = stripBearerSubprotocol(value);
      if (kept !== undefined) out.push(name, kept);
      continue;
    }
    out.push(name, value);
  }
  // Node re-frames the body: chunked when the client sent chunked, else by Content-Length.
  if (chunked) out.push('Transfer-Encoding', 'chunked');
  if (options.upgrade) {
    if (upgradeValue !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgradeValue);
    // A POST upgrade without framing would otherwise be sent chunked, and the terminating chunk would land in the
    // upgraded stream.
    if (!chunked && !hasLength) out.push('Content-Length', '0');
  }
  if (options.authorization !== undefined) out.push('Authorization', options.authorization);
  out.push(...options.identityHeaders);
  return out;
}
