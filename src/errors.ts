/**
 * The one error type of the project. Everything a caller, a client or main.ts decides about an error it decides on
 * `code`, never on the message (which is for people and may be reworded). A COE writes the error in its own dialect
 * (routes/respond.ts); the message is shown to the user, so it says what happened and what to do.
 */

/** Stable codes and the HTTP status each answers with unless the error names another. */
const ERROR_STATUS = {
  /** The path or target could mean two things (encoded slashes, dot segments ...). */
  path_invalid: 400,
  /** A request header the gateway will not forward as sent (Connection naming an identity header ...). */
  header_invalid: 400,
  /** Credentials sent in a way the gateway refuses to interpret (two tokens, two Authorization headers ...). */
  credentials_invalid: 400,
  /** A body the adapter reads and cannot accept. */
  body_invalid: 400,
  /** A Docker API version older than the gateway serves. */
  api_version_unsupported: 400,
  /** An AdmissionReview the webhook cannot read. */
  review_invalid: 400,
  /** No credentials, or Keystone says the token is not valid: get a new one. */
  unauthenticated: 401,
  /** Valid credentials that may not do this (scope, roles, policy, impersonation). */
  forbidden: 403,
  /** The object is missing, or is another project's (which looks the same). */
  not_found: 404,
  /** A read of the client's body took too long. */
  request_timeout: 408,
  /** A name another project holds, a namespace being deleted. */
  conflict: 409,
  body_too_large: 413,
  rate_limited: 429,
  internal: 500,
  /** What was about to leave for an upstream broke an invariant (the final check): nothing was sent. */
  outgoing_violation: 500,
  /** The project namespace cannot be made or used; the status says whose problem it is. */
  namespace_unavailable: 503,
  /** The Docker engine answered one of the adapter's own calls with a failure. */
  engine_failed: 502,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  /** Keystone cannot answer now: never 401, so clients do not start re-authentication storms. */
  keystone_unavailable: 503,
  /** Keystone answered, but with a failure (a 5xx, no token, an unreadable body): try again later. */
  keystone_failed: 503,
  /** Too many calls were waiting for Keystone: slow, not known to be down. */
  keystone_busy: 503,
  /** Keystone refuses the gateway's own credentials or its right to validate tokens: the operator's to fix. */
  keystone_refuses_gateway: 503,
  /** The gateway's configuration cannot be used (main.ts exits with 2). */
  config_invalid: 500,
  /** What a user gave the command-line client cannot be used. */
  client_input: 400,
  /** Keystone no longer accepts the token a command-line client used (revoked, or expired since it was cached). */
  client_token_refused: 401,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface GatewayErrorOptions {
  /** Overrides the code's usual status. */
  readonly status?: number;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly status: number;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: GatewayErrorOptions = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.status = options.status ?? ERROR_STATUS[code];
    this.headers = options.headers;
  }
}

/** Whether `err` is a GatewayError with one of `codes`. */
export function hasCode(err: unknown, ...codes: ErrorCode[]): err is GatewayError {
  return err instanceof GatewayError && codes.includes(err.code);
}

const CERTIFICATE_NOT_TRUSTED_CODES = ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT'];
const CERTIFICATE_CODES = [...CERTIFICATE_NOT_TRUSTED_CODES, 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID'];

/** Node's (or undici's) code of a system or TLS error, looking through `cause`s; '' when there is none. */
export function systemCode(err: unknown): string {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !(e instanceof GatewayError)) return code;
  }
  return '';
}

/** A server certificate signed by no CA the client was given or trusts (the remedy: give the right CA). */
export function isUntrustedIssuer(err: unknown): boolean {
  return CERTIFICATE_NOT_TRUSTED_CODES.includes(systemCode(err));
}

/** A server certificate the configured CA and name do not vouch for: a configuration matter, not an outage. */
export function isCertificateRefusal(err: unknown): boolean {
  return CERTIFICATE_CODES.includes(systemCode(err));
}
