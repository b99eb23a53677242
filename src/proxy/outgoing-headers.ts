import { HOP_BY_HOP, connectionTokens } from './hop-by-hop.js';

export interface OutgoingHeaderRules {
  readonly hostHeader: string;
  /** Lower-cased names the COE removes on top of the hop-by-hop rules (credentials, identity, forwarding). */
  readonly drop: (lowerName: string) => boolean;
  /** Rewrites a kept header's value; undefined removes it. */
  readonly rewrite?: (lowerName: string, value: string) => string | undefined;
  readonly upgrade: boolean;
  /** Set when the body is replaced (a checked, re-serialized body): its length. */
  readonly bodyLength?: number;
  /** Appended last, so nothing the client sent can shadow them. */
  readonly append: readonly string[];
}

/**
 * The request headers for the upstream, in one pass over rawHeaders (repetition preserved): hop-by-hop headers and
 * those Connection names go, so do the COE's protected ones; the upgrade handshake is re-added for upgrades; the
 * body framing is the HTTP client's (chunked when the client sent chunked, else Content-Length).
 */
export function outgoingHeaders(rawHeaders: readonly string[], rules: OutgoingHeaderRules): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = ['Host', rules.hostHeader];
  let chunked = false;
  let hasLength = false;
  let upgradeValue: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      chunked = true;
      continue;
    }
    if (lower === 'upgrade') {
      upgradeValue = rawHeaders[i + 1] as string;
      continue;
    }
    // Expect: 100-continue was answered by Node's server already; the upstream gets the body without waiting.
    if (lower === 'host' || lower === 'expect' || HOP_BY_HOP.has(lower) || named.has(lower) || rules.drop(lower)) continue;
    if (lower === 'content-length') {
      if (rules.bodyLength !== undefined) continue;
      hasLength = true;
    }
    let value = rawHeaders[i + 1] as string;
    if (rules.rewrite !== undefined) {
      const rewritten = rules.rewrite(lower, value);
      if (rewritten === undefined) continue;
      value = rewritten;
    }
    out.push(name, value);
  }
  if (rules.bodyLength !== undefined) out.push('Content-Length', String(rules.bodyLength));
  // Ordinary requests go through undici, which frames a body of unknown length itself; node:http's upgrade request
  // is told.
  else if (chunked && rules.upgrade) out.push('Transfer-Encoding', 'chunked');
  if (rules.upgrade) {
    if (upgradeValue !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgradeValue);
    // A POST upgrade without framing would otherwise be sent chunked, and the terminating chunk would land in the
    // upgraded stream.
    if (rules.bodyLength === undefined && !chunked && !hasLength) out.push('Content-Length', '0');
  }
  out.push(...rules.append);
  return out;
}
