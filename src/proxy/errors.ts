import { GatewayError, isCertificateRefusal, systemCode } from '../errors.js';

/** How long the gateway waits for an upstream connection (TCP and TLS handshake) before it gives up with a 504. */
export const CONNECT_TIMEOUT_MS = 10_000;

const CERTIFICATE_NOT_ACCEPTED = "the upstream's TLS certificate was not accepted: check the configured CA and name";

/** What the commonest failure codes mean, for the client's message (the code stays first, as operators grep for it). */
const MEANINGS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: is it running?',
  ENOENT: 'no such socket: is it running?',
  EHOSTUNREACH: 'host unreachable',
  ECONNRESET: 'the upstream closed the connection before answering',
  UND_ERR_SOCKET: 'the upstream closed the connection before answering (a TLS upstream does this to a client certificate it does not accept)',
};

/** The upstream accepted a request but did not start its answer within the limit (504). */
export function responseHeadTimeout(headersTimeoutMs: number): GatewayError {
  return new GatewayError('upstream_timeout', `the upstream accepted the request but did not answer within ${headersTimeoutMs / 1000} s`);
}

/**
 * The upstream could not be reached or broke before answering, as the client's 502 (or 504 on a timeout). The system
 * code (ECONNREFUSED ...) stays in `cause` for the metrics. `headersTimeoutMs`: the response-head limit the request
 * had, to name it when that is what ran out.
 */
export function upstreamFailure(err: unknown, headersTimeoutMs = 0): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = systemCode(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new GatewayError('upstream_timeout', responseHeadTimeout(headersTimeoutMs).message, { cause: err });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new GatewayError('upstream_timeout', `the upstream did not complete a connection within ${CONNECT_TIMEOUT_MS / 1000} s (stopped or overloaded?)`, { cause: err });
  }
  const meaning = isCertificateRefusal(err) ? CERTIFICATE_NOT_ACCEPTED : MEANINGS[code];
  const what = code !== '' ? code : err instanceof Error ? err.message : String(err);
  return new GatewayError('upstream_unreachable', `upstream unreachable: ${what}${meaning !== undefined ? ` (${meaning})` : ''}`, { cause: err });
}
