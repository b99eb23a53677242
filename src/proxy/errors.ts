/** How long the gateway waits for an upstream connection (TCP and TLS handshake) before it gives up with a 504. */
export const CONNECT_TIMEOUT_MS = 10_000;

const CERTIFICATE_NOT_ACCEPTED = "the upstream's TLS certificate was not accepted: check the configured CA and name";
/** Node's codes for a server certificate signed by no CA the client trusts (the remedy: give the right CA). */
const UNTRUSTED_ISSUER_CODES = ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT'];
/** Node's codes for an upstream certificate the configured CA and name do not vouch for. */
const CERTIFICATE_CODES = [...UNTRUSTED_ISSUER_CODES, 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID'];

const codeOf = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? '';

/** The server's certificate is signed by no CA the client was given or trusts. */
export function isUntrustedIssuer(err: unknown): boolean {
  return UNTRUSTED_ISSUER_CODES.includes(codeOf(err));
}

/** The error is the upstream's certificate refused by the gateway's own TLS settings (a configuration matter). */
export function isCertificateRefusal(err: unknown): boolean {
  return CERTIFICATE_CODES.includes(codeOf(err));
}

/** What the commonest failure codes mean, for the client's message (the code stays first, as operators grep for it). */
const MEANINGS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: is it running?',
  ENOENT: 'no such socket: is it running?',
  EHOSTUNREACH: 'host unreachable',
  ECONNRESET: 'the upstream closed the connection before answering',
  UND_ERR_SOCKET: 'the upstream closed the connection before answering (a TLS upstream does this to a client certificate it does not accept)',
  ...Object.fromEntries(CERTIFICATE_CODES.map((code) => [code, CERTIFICATE_NOT_ACCEPTED])),
};

/** The upstream could not be reached or broke before answering: the client gets 502 (or 504 on a timeout). */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly status: number;
  constructor(
    message: string,
    readonly code: string | undefined,
    status = 502,
  ) {
    super(message);
    this.status = status;
  }

  /** `headersTimeoutMs`: the response-head limit the failed request had, to name it when that is what ran out. */
  static from(err: unknown, headersTimeoutMs = 0): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return new UpstreamError(`the upstream accepted the request but did not answer within ${headersTimeoutMs / 1000} s`, e.code, 504);
    }
    if (e.code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new UpstreamError(`the upstream did not complete a connection within ${CONNECT_TIMEOUT_MS / 1000} s (stopped or overloaded?)`, e.code, 504);
    }
    const meaning = e.code !== undefined ? MEANINGS[e.code] : undefined;
    return new UpstreamError(`upstream unreachable: ${e.code ?? e.message}${meaning !== undefined ? ` (${meaning})` : ''}`, e.code);
  }
}
