import { badCredentials, unauthorized } from './errors.js';

/** kubectl's way to carry a bearer token on a WebSocket handshake (browsers cannot set Authorization). */
const BEARER_SUBPROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

/**
 * Keystone's Fernet tokens are under 255 bytes and its JWS tokens about 1 KB; nothing longer is a token Keystone could
 * have issued. Keystone under uwsgi drops a request whose headers pass its 4 KB buffer without an answer, so a longer
 * "token" sent on would look like a Keystone outage (503, counted as a Keystone failure: invariants.md 36): the
 * caller's error is said here, as a 401.
 */
export const MAX_TOKEN_LENGTH = 2048;
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

const HOW_TO = 'send a project-scoped Keystone token as "X-Auth-Token: <token>" or "Authorization: Bearer <token>" (openstack token issue)';

function headerValues(rawHeaders: readonly string[], lowerName: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === lowerName) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

function checkToken(token: string, where: string): string {
  if (token.length === 0) throw unauthorized(`the token in ${where} is empty; ${HOW_TO}`);
  if (token.length > MAX_TOKEN_LENGTH) {
    throw unauthorized(`the token in ${where} is longer than ${MAX_TOKEN_LENGTH} characters and cannot be a Keystone token; ${HOW_TO}`);
  }
  if (!TOKEN_CHARS.test(token)) {
    throw unauthorized(`the token in ${where} contains characters no Keystone token has (spaces, control or non-ASCII)`);
  }
  return token;
}

function fromAuthorization(value: string): string {
  const match = /^\s*(\S+)(?:\s+(.*?))?\s*$/.exec(value);
  const scheme = match?.[1] ?? '';
  if (scheme.toLowerCase() !== 'bearer') {
    throw unauthorized(`Authorization scheme '${scheme.slice(0, 20)}' is not accepted here; ${HOW_TO}`);
  }
  return checkToken(match?.[2] ?? '', 'Authorization: Bearer');
}

function decodeBase64Url(encoded: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64url').toString('utf8');
}

function fromSubprotocols(values: readonly string[]): string | undefined {
  const bearer = values
    .flatMap((v) => v.split(','))
    .map((p) => p.trim())
    .filter((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  if (bearer.length === 0) return undefined;
  if (bearer.length > 1) throw badCredentials('several bearer tokens in Sec-WebSocket-Protocol; send exactly one');
  const decoded = decodeBase64Url((bearer[0] as string).slice(BEARER_SUBPROTOCOL_PREFIX.length));
  if (decoded === undefined) throw unauthorized('the bearer token in Sec-WebSocket-Protocol is not valid base64url');
  return checkToken(decoded, 'Sec-WebSocket-Protocol');
}

/** The Sec-WebSocket-Protocol value without the bearer token entry, or undefined when nothing is left. */
export function stripBearerSubprotocol(value: string): string | undefined {
  const kept = value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0 && !p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/** What a request authenticates with: a Keystone token, or (Docker's Basic auth) an application credential. */
export type RequestCredential =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'applicationCredential'; readonly id: string; readonly secret: string };

function fromBasic(value: string): { id: string; secret: string } | undefined {
  const match = /^\s*basic\s+(\S+)\s*$/i.exec(value);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const id = colon === -1 ? '' : decoded.slice(0, colon);
  const secret = colon === -1 ? '' : decoded.slice(colon + 1);
  if (id === '' || secret === '' || !TOKEN_CHARS.test(id) || secret.length > MAX_TOKEN_LENGTH) {
    throw unauthorized('Authorization: Basic must carry an application credential as <id>:<secret>');
  }
  return { id, secret };
}

/** What a mount accepts as credentials. */
export interface CredentialRules {
  /** On upgrades, a token in Sec-WebSocket-Protocol (kubectl's way: browsers cannot set Authorization) is accepted. */
  readonly webSocketToken?: boolean;
  /**
   * `Authorization: Basic <id:secret>` with a Keystone application credential is accepted, for clients (the docker
   * CLI's HttpHeaders) that must keep a long-lived credential.
   */
  readonly applicationCredentials?: boolean;
  /** How this mount's clients send a credential, for the answer to a request without one. */
  readonly howTo?: string;
}

/**
 * Finds the caller's credential: a Keystone token (X-Auth-Token, Authorization: Bearer, or kubectl's WebSocket
 * subprotocol), or, where accepted, an application credential. Reads rawHeaders because Node keeps only the first of
 * repeated Authorization headers: a request with two must be refused, not silently half-read. A request may carry
 * one credential only.
 */
export function extractCredential(rawHeaders: readonly string[], upgrade: boolean, rules: CredentialRules): RequestCredential {
  const authorization = headerValues(rawHeaders, 'authorization');
  const xAuthToken = headerValues(rawHeaders, 'x-auth-token');
  if (authorization.length > 1) throw badCredentials('several Authorization headers; send exactly one');
  if (xAuthToken.length > 1) throw badCredentials('several X-Auth-Token headers; send exactly one');
  if (rules.applicationCredentials === true && authorization.length === 1) {
    const basic = fromBasic(authorization[0] as string);
    if (basic !== undefined) {
      if (xAuthToken.length > 0) throw badCredentials('the request carries both an application credential and a token; send one');
      return { kind: 'applicationCredential', ...basic };
    }
  }
  const found: string[] = [];
  if (xAuthToken.length === 1) found.push(checkToken((xAuthToken[0] as string).trim(), 'X-Auth-Token'));
  if (authorization.length === 1) found.push(fromAuthorization(authorization[0] as string));
  if (upgrade && rules.webSocketToken === true) {
    const fromProtocol = fromSubprotocols(headerValues(rawHeaders, 'sec-websocket-protocol'));
    if (fromProtocol !== undefined) found.push(fromProtocol);
  }
  if (found.length === 0) throw unauthorized(`no token; ${rules.howTo ?? HOW_TO}`);
  const token = found[0] as string;
  if (found.some((t) => t !== token)) {
    throw badCredentials('the request carries different tokens in different headers; send one token');
  }
  return { kind: 'token', token };
}

/** The caller's Keystone token (extractCredential without application credentials). */
export function extractToken(rawHeaders: readonly string[], options: { upgrade: boolean }): string {
  return (extractCredential(rawHeaders, options.upgrade, { webSocketToken: true }) as { token: string }).token;
}

/** The secret part of a credential, which must never leave the gateway (routes/outgoing-check.ts looks for it). */
export function credentialSecret(credential: RequestCredential): string {
  return credential.kind === 'token' ? credential.token : credential.secret;
}
