import type { Readable } from 'node:stream';

/** Bytes a forwarded exchange carried: `in` from the client towards the upstream, `out` back to the client. */
export interface ByteCount {
  in: number;
  out: number;
}

/** Adds what `stream` emits to one side of `count`; the listener observes, it neither pauses nor consumes. */
export function countInto(stream: Readable, count: ByteCount | undefined, side: keyof ByteCount): void {
  if (count === undefined) return;
  stream.on('data', (chunk: Buffer | string) => {
    count[side] += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
  });
}
