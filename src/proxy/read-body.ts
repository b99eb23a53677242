import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  readonly status = 413;
}

/**
 * Reads a request body that must be checked before it is forwarded, refusing it as soon as it passes `max` bytes.
 * Only for small control bodies (create, update, exec); data streams are never read whole.
 */
export function readBody(stream: Readable, max: number, declared?: number): Promise<Buffer> {
  if (declared !== undefined && declared > max) {
    stream.resume();
    return Promise.reject(new BodyTooLargeError(`the request body is larger than ${max} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        stream.off('data', onData);
        stream.resume();
        reject(new BodyTooLargeError(`the request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}
