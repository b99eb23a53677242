/**
 * The request target, checked and decoded once, before any routing decision (invariants.md 20: a filter that looks
 * at one spelling of a path while the upstream acts on another is bypassable). Paths that could mean two things
 * are refused rather than guessed at: dot segments (raw or encoded), encoded slashes or backslashes, backslashes,
 * empty segments (`//`), characters RFC 3986 does not allow in a path (raw), invalid or overlong UTF-8.
 */
export class PathError extends Error {
  override readonly name = 'PathError';
  readonly status = 400;
  constructor(
    message: string,
    /** The first path segment, when it was readable: lets the caller answer in that mount's dialect. */
    readonly firstSegment: string | undefined,
  ) {
    super(message);
  }
}

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

function decodeSegment(raw: string, first: string | undefined): string {
  let decoded: string;
  try {
    decoded = raw.includes('%') ? decodeURIComponent(raw) : raw;
  } catch {
    throw new PathError(`the path segment '${raw.slice(0, 64)}' is not valid percent-encoded UTF-8`, first);
  }
  if (decoded === '.' || decoded === '..') throw new PathError('the path may not contain . or .. segments', first);
  if (/[/\\\x00-\x1f\x7f]/.test(decoded)) {
    throw new PathError('the path may not contain encoded slashes, backslashes or control characters', first);
  }
  return decoded;
}

export function parseRequestTarget(url: string): RequestTarget {
  if (!url.startsWith('/')) throw new PathError('the request target must be a path starting with /', undefined);
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawSegments = rawPath.slice(1).split('/');
  let first: string | undefined;
  try {
    first = decodeSegment(rawSegments[0] as string, undefined);
  } catch {
    first = undefined;
  }
  if (FORBIDDEN_RAW.test(rawPath)) {
    throw new PathError('the path may not contain backslashes, spaces, control, non-ASCII or other characters a URL path does not allow: percent-encode them', first);
  }
  const segments = rawSegments.map((s, i) => {
    if (s === '' && i !== rawSegments.length - 1) throw new PathError('the path may not contain empty segments (//)', first);
    return decodeSegment(s, first);
  });
  return { segments, rawPath, rest: url.slice(1 + (rawSegments[0] as string).length) };
}

/** A first path segment of the Docker Engine API (`_ping`, `v1.41`, `containers` ...), never one of Kubernetes'. */
export function isDockerApiRoot(segment: string): boolean {
  return segment === '_ping' || /^v\d+\.\d+$/.test(segment) || ['containers', 'images', 'exec', 'volumes', 'networks', 'events', 'info'].includes(segment);
}

export const DOCKER_PREFIX_HINT = 'Docker API paths are under /docker on this gateway: set DOCKER_HOST=tcp://<gateway host>:<port>/docker';
