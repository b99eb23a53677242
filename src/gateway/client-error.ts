import { rawJsonAnswer } from '../proxy/raw-response.js';

/**
 * The answer to a request Node's parser refused or timed out, written on the raw socket: 431 for oversized headers,
 * 408 for headers that did not arrive within `headersTimeout`, 400 with llhttp's reason (a fixed text, nothing of the
 * request echoed) for the rest: smuggling attempts, obs-fold, unknown methods.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException & { reason?: unknown }, headersTimeoutMs: number): string {
  if (err.code === 'HPE_HEADER_OVERFLOW') return rawJsonAnswer(431, 'request headers too large (the limit is 16 KB in all)');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return rawJsonAnswer(408, `the request's headers did not arrive within ${headersTimeoutMs / 1000} s`);
  return rawJsonAnswer(400, `malformed HTTP request: ${typeof err.reason === 'string' ? err.reason : (err.code ?? 'unreadable')}`);
}
