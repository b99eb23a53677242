import type { Duplex } from 'node:stream';

/**
 * The first `length` bytes of an upgrade request's body (Docker's exec start sends `{"Detach":false,"Tty":false}`
 * before the stream), from `head` and then the socket; and what came after them, which is already the client's
 * stream and must reach the upstream. The socket is left paused with nothing read past what is returned, so bytes
 * the client sends before the upstream agrees wait in the socket (pipe-sockets resumes it) instead of being emitted
 * to no listener and lost.
 */
export function readUpgradeBody(socket: Duplex, head: Buffer, length: number): Promise<{ body: Buffer; rest: Buffer }> {
  const split = (buffered: Buffer): { body: Buffer; rest: Buffer } => ({ body: buffered.subarray(0, length), rest: buffered.subarray(length) });
  if (head.length >= length) return Promise.resolve(split(head));
  return new Promise((resolve, reject) => {
    const chunks = [head];
    let size = head.length;
    const done = (): void => {
      socket.pause();
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < length) return;
      done();
      resolve(split(Buffer.concat(chunks)));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onEnd = (): void => onError(new Error('the client closed the connection before sending the whole body'));
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
  });
}
