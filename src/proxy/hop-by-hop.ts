/**
 * Hop-by-hop rules (RFC 9110 7.6.1): these headers describe one connection, not the message, and a proxy must not
 * forward them, nor any header a Connection header names.
 */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Lower-cased header names listed in every Connection header of a flat rawHeaders array. */
export function connectionTokens(rawHeaders: readonly string[]): ReadonlySet<string> {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const token of (rawHeaders[i + 1] as string).split(',')) {
      const t = token.trim().toLowerCase();
      if (t.length > 0) (tokens ??= new Set()).add(t);
    }
  }
  // Most requests have no Connection header (HTTP/1.1 keeps alive without one): nothing to make for them.
  return tokens ?? NO_TOKENS;
}

/**
 * Response headers to relay to the client: everything but hop-by-hop headers and those the upstream's Connection
 * header names. Node frames the body again (chunked or Content-Length) for the client.
 */
export function responseHeaders(rawHeaders: readonly string[]): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

/** A parsed head's name that never goes on: hop-by-hop, or an HTTP/2 pseudo-header (`:status`). */
const neverRelayed = (name: string): boolean => HOP_BY_HOP.has(name) || name.charCodeAt(0) === 0x3a;

/** Whether relayedHeaders has anything to take out of `headers`. */
function hasHopByHop(headers: Record<string, unknown>): boolean {
  for (const name in headers) if (neverRelayed(name)) return true;
  return false;
}

/**
 * The same rule for a response head already parsed into an object (undici's, node:http2's): hop-by-hop headers, those
 * the Connection header names and HTTP/2 pseudo-headers (`:status`) go. The head is returned as it is when none of them
 * is there (a Go upstream such as the apiserver sends none on HTTP/1.1), else copied without them: no `delete`, which
 * turned the object into a slow dictionary on the request path (docs/performance.md).
 */
export function relayedHeaders<H extends Record<string, string | string[] | undefined>>(headers: H): H {
  if (!hasHopByHop(headers)) return headers;
  const connection = headers.connection;
  const named = connection === undefined ? undefined : new Set(String(connection).split(',').map((t) => t.trim().toLowerCase()));
  const kept: Record<string, string | string[] | undefined> = {};
  for (const name in headers) {
    if (neverRelayed(name) || named?.has(name) === true) continue;
    kept[name] = headers[name];
  }
  return kept as H;
}

/** Headers of a 101 answer: the upgrade handshake headers stay, other hop-by-hop ones go. */
export function upgradeResponseHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'upgrade' && HOP_BY_HOP.has(lower)) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}
