import { GatewayError } from '../errors.js';

const pathError = (message: string): GatewayError => new GatewayError('path_invalid', message);

export interface RequestTarget {
  /** Decoded path segments; a trailing slash gives a last empty segment. */
  readonly segments: readonly string[];
  /** The raw path and query after the first segment, exactly as the client sent them. */
  readonly rest: string;
  readonly rawPath: string;
}

/**
 * Anything but RFC 3986 path characters (unreserved, percent-encoded, sub-delims, ':', '@', '/'): backslashes,
 * spaces, quotes, control and non-ASCII characters are each read differently by some parser (a URL parser turns `\`
 * into `/` and percent-encodes a space), so they are refused rather than passed on.
 */
const FORBIDDEN_RAW = /[^A-Za-z0-9\-._~%!$&'()*+,;=:@/]/;

/** A raw segment decoded; the caller has refused raw characters outside FORBIDDEN_RAW's set. */
function decodeSegment(raw: string): string {
  const encoded = raw.includes('%');
  let decoded = raw;
  if (encoded) {
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw pathError(`the path segment '${raw.slice(0, 64)}' is not valid percent-encoded UTF-8`);
    }
  }
  if (decoded === '.' || decoded === '..') throw pathError('the path may not contain . or .. segments');
  // Only decoding can bring these in: the raw check already kept slashes, backslashes and control characters out.
  if (encoded && /[/\\\x00-\x1f\x7f]/.test(decoded)) {
    throw pathError('the path may not contain encoded slashes, backslashes or control characters');
  }
  return decoded;
}

/**
 * The request target, checked and decoded once, before any routing decision (invariants.md 20: a filter that looks
 * at one spelling of a path while the upstream acts on another is bypassable). Paths that could mean two things
 * are refused rather than guessed at: dot segments (raw or encoded), encoded slashes or backslashes, backslashes,
 * empty segments (`//`), characters RFC 3986 does not allow in a path (raw), invalid or overlong UTF-8.
 */
export function parseRequestTarget(url: string): RequestTarget {
  if (!url.startsWith('/')) throw pathError('the request target must be a path starting with /');
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawSegments = rawPath.slice(1).split('/');
  if (FORBIDDEN_RAW.test(rawPath)) {
    throw pathError('the path may not contain backslashes, spaces, control, non-ASCII or other characters a URL path does not allow: percent-encode them');
  }
  const segments: string[] = new Array<string>(rawSegments.length);
  for (let i = 0; i < rawSegments.length; i += 1) {
    const raw = rawSegments[i] as string;
    if (raw === '' && i !== rawSegments.length - 1) throw pathError('the path may not contain empty segments (//)');
    segments[i] = decodeSegment(raw);
  }
  return { segments, rawPath, rest: url.slice(1 + (rawSegments[0] as string).length) };
}

/**
 * The first path segment of a request target as far as it can be read, for choosing the dialect of an answer to a
 * target parseRequestTarget refused; undefined when it cannot be read.
 */
export function firstSegmentOf(url: string): string | undefined {
  const raw = url.slice(1).split(/[/?]/, 1)[0] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
