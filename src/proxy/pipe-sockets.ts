import type { Duplex } from 'node:stream';
import { countInto, type ByteCount } from './byte-count.js';

/**
 * Joins two upgraded connections. Each direction ends on its own (half-close: `docker exec -i` and `kubectl exec -i`
 * close stdin and keep reading, invariants.md 29); an error or a full close on either side closes the other.
 * `bytes.in` counts what `client` sent, `bytes.out` what `upstream` sent.
 */
export function pipeSockets(client: Duplex, upstream: Duplex, onClose?: () => void, bytes?: ByteCount, idle?: { readonly ms: number; readonly onIdle: () => void }): void {
  const a = client;
  const b = upstream;
  countInto(a, bytes, 'in');
  countInto(b, bytes, 'out');
  for (const s of [a, b]) {
    // Sockets made by http(s) servers end their writable side when the readable one ends, unless told otherwise.
    (s as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
    const sock = s as Duplex & { setTimeout?: (ms: number) => void; setNoDelay?: (on: boolean) => void };
    sock.setTimeout?.(0);
    sock.setNoDelay?.(true);
  }
  let closed = false;
  const closeBoth = (): void => {
    // What the relays hold for this turn goes out first: the other side's last bytes and then its reset or error
    // can arrive in one turn, and pipe(), which wrote each chunk at once, delivered them.
    for (const s of [a, b]) while (!s.destroyed && s.writableCorked > 0) s.uncork();
    if (!a.destroyed) a.destroy();
    if (!b.destroyed) b.destroy();
    if (!closed) {
      closed = true;
      onClose?.();
    }
  };
  a.on('error', closeBoth);
  b.on('error', closeBoth);
  a.on('close', closeBoth);
  b.on('close', closeBoth);
  relay(a, b);
  relay(b, a);
  // Bytes either way are activity on the client's socket (read from it, or written to it).
  const clientSocket = a as Duplex & { setTimeout?: (ms: number, cb?: () => void) => void };
  if (idle !== undefined && idle.ms > 0) {
    clientSocket.setTimeout?.(idle.ms, () => {
      idle.onIdle();
      closeBoth();
    });
  }
}

/**
 * How much a relay lets wait for a slow side before it stops reading the other (per direction and session). The
 * chunks held for one turn's write count too, so a small bound stopped and restarted reading every few records
 * (64 KB: about 15 % more CPU per MB, docs/performance.md step 17; what a stalled session holds: security.md).
 */
const RELAY_BUFFER_BYTES = 256 * 1024;

/**
 * Copies `from` into `to` as pipe() does (backpressure; `to` ends when `from` does), with two differences measured
 * in docs/performance.md (step 14): the chunks of one loop turn leave in one write (a TLS socket hands over each
 * 16 KB record as a chunk of its own, and each write is an encryption pass and a syscall), and reading stops only
 * when RELAY_BUFFER_BYTES wait, not after every record (each stop and start is an epoll_ctl).
 */
function relay(from: Duplex, to: Duplex): void {
  let corked = false;
  const flush = (): void => {
    corked = false;
    to.uncork();
  };
  from.on('data', (chunk: Buffer) => {
    if (!corked) {
      corked = true;
      to.cork();
      setImmediate(flush);
    }
    to.write(chunk);
    if (to.writableLength >= RELAY_BUFFER_BYTES) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  // As pipe() does: a socket paused before (bytes that came with the upgrade wait in it) flows now.
  from.resume();
}
