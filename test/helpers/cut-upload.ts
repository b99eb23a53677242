import type { Duplex } from 'node:stream';

/**
 * A client that gives up mid-upload: on a connection `connect` opens (plain or TLS), a request head `head` (request
 * line and headers, ending in CRLF) promising a 1 MiB body, then only `sent` of it; after `leave` (ms, or once the
 * promise settles) the connection is destroyed. Resolves once it is.
 */
export function cutUpload(connect: (onConnected: () => void) => Duplex, head: string, sent: Buffer, leave: number | Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(() => {
      socket.write(`${head}Content-Length: ${1024 * 1024}\r\n\r\n`);
      socket.write(sent);
      const go = (): void => {
        socket.destroy();
        resolve();
      };
      if (typeof leave === 'number') setTimeout(go, leave);
      else void leave.then(go, go);
    });
    socket.on('error', (err) => (socket.destroyed ? resolve() : reject(err)));
  });
}
