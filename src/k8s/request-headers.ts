import { connectionTokens } from '../proxy/hop-by-hop.js';
import { outgoingHeaders } from '../proxy/outgoing-headers.js';
import { stripBearerSubprotocol } from '../auth/credentials.js';
import { GatewayError } from '../errors.js';

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


/** Connection may name only ordinary connection options; naming an identity header is an attack (invariants.md 2). */
function checkConnection(tokens: ReadonlySet<string>): void {
  for (const token of tokens) {
    if (isProtected(token) && token !== 'host') {
      throw new GatewayError('header_invalid', `the Connection header may not name '${token}'`);
    }
  }
}

/**
 * Client Impersonate-* headers are refused, not dropped (invariants.md 1): dropped, `kubectl auth can-i --as=x`
 * answered for the caller instead of x, and `kubectl get --as=x` showed the caller's objects as if they were x's.
 */
function refuseImpersonation(rawHeaders: readonly string[]): void {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if ((name.charCodeAt(0) | 0x20) === 0x69 && name.toLowerCase().startsWith('impersonate-')) {
      throw new GatewayError(
        'forbidden',
        `${name} (kubectl --as, --as-group, --as-uid) cannot be used through the gateway: every request acts as the Keystone user and project of its token; to check another subject's rights, ask a cluster administrator`,
      );
    }
  }
}

export interface K8sHeaderOptions {
  readonly hostHeader: string;
  /** The gateway's own Authorization for the apiserver, if it uses a token. */
  readonly authorization: string | undefined;
  /** Impersonate-* lines for the caller; never empty (see impersonation.ts). */
  readonly identityHeaders: readonly string[];
  readonly upgrade: boolean;
  /**
   * A discovery or OpenAPI request: client Impersonate-* headers are dropped, not refused. kubectl reads discovery
   * answers raw ("Forbidden: unknown"); refused on the request that follows, it prints the refusal's message.
   */
  readonly discovery?: boolean;
}

const withoutBearerProtocol = (lower: string, value: string): string | undefined =>
  lower === 'sec-websocket-protocol' ? stripBearerSubprotocol(value) : value;

/**
 * The headers sent to the apiserver: the client's own headers minus hop-by-hop and protected ones, then the
 * gateway's identity and impersonation headers, added last so no client header can remove or shadow them.
 */
export function k8sRequestHeaders(rawHeaders: readonly string[], options: K8sHeaderOptions): string[] {
  checkConnection(connectionTokens(rawHeaders));
  if (options.discovery !== true) refuseImpersonation(rawHeaders);
  return outgoingHeaders(rawHeaders, {
    hostHeader: options.hostHeader,
    drop: isProtected,
    rewrite: withoutBearerProtocol,
    upgrade: options.upgrade,
    append: [...(options.authorization !== undefined ? ['Authorization', options.authorization] : []), ...options.identityHeaders],
  });
}
