import type { Readable } from 'node:stream';
import getRawBody from 'raw-body';
import { GatewayError } from '../errors.js';

/**
 * Reads a request body that must be checked before it is forwarded (raw-body, as Express's own parsers do), refusing
 * it as soon as it passes `max` bytes or when it is declared larger. Only for small control bodies (create, update,
 * exec, an AdmissionReview); data streams are never read whole. On a refusal the stream is left paused: the answer's
 * writer drains what is still coming (routes/respond.ts).
 */
export async function readBody(stream: Readable, max: number, declared?: number): Promise<Buffer> {
  try {
    return await getRawBody(stream, { limit: max, ...(declared !== undefined && Number.isFinite(declared) ? { length: declared } : {}) });
  } catch (err) {
    const type = (err as { type?: unknown }).type;
    if (type === 'entity.too.large') throw new GatewayError('body_too_large', `the request body is larger than ${max} bytes`);
    if (type === 'request.size.invalid') throw new GatewayError('body_invalid', 'the request body is not as long as its Content-Length says');
    throw new GatewayError('body_invalid', `the request body could not be read (${err instanceof Error ? err.message : String(err)})`);
  }
}
