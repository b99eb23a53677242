import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Lines queue in a buffer of this size and go out when the next line would not fit ... */
const BATCH_BYTES = 64 * 1024;
/** ... or at the latest after this long. */
const FLUSH_INTERVAL_MS = 1000;
/** How long to wait before writing again when a non-blocking stdout is full (EAGAIN). */
const FULL_PIPE_WAIT_MS = 10;

/** Every open writer, written out when the process exits. */
const open = new Set<LineDestination>();
let exitHook = false;

function flushAllAtExit(): void {
  for (const stream of open) {
    try {
      stream.flushSync();
    } catch {
      // The descriptor is gone: nothing more can be written.
    }
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `bytes` to `fd`, waiting while a non-blocking pipe is full: a stdout nobody reads stalls the writer. */
function writeAll(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, FULL_PIPE_WAIT_MS);
    }
  }
}

/**
 * The log's and the audit trail's writer: lines are copied into one 64 KB buffer and go out in one synchronous write
 * when it is full, at least every second, on flushSync and at exit; a SIGKILL loses at most the last second. One
 * write per line was most of what logging cost on the request path; pino's sonic-boom, used before, batched too but
 * spent more per line than the writes it saved (it measures its whole queued string again for every line and copies
 * it once more after each write): docs/performance.md. Synchronous like pino's stdout default, so a stdout nobody
 * reads stalls the gateway rather than growing its memory, and a write that fails (disk full, stdout closed) throws:
 * no request goes on unaudited.
 */
export class LineDestination {
  private fd: number;
  private readonly buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  /** `dest`: a file descriptor (1 for stdout), or a file opened for appending (its folder created). */
  constructor(private readonly dest: number | string) {
    this.fd = typeof dest === 'number' ? dest : LineDestination.openFile(dest);
    this.timer = setInterval(() => this.flushSync(), FLUSH_INTERVAL_MS);
    this.timer.unref();
    open.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', flushAllAtExit);
    }
  }

  private static openFile(file: string): number {
    mkdirSync(path.dirname(file), { recursive: true });
    // Audit records name users, projects and client addresses: no access for others (a log shipper may be in the group).
    return openSync(file, 'a', 0o640);
  }

  write(line: string): void {
    if (this.closed) throw new Error('line destination closed');
    // A line that surely fits (UTF-8 takes at most 3 bytes per UTF-16 unit) skips the byte count.
    if (line.length * 3 > BATCH_BYTES - this.used) {
      const bytes = Buffer.byteLength(line);
      if (bytes > BATCH_BYTES - this.used) {
        this.flushSync();
        if (bytes > BATCH_BYTES) {
          writeAll(this.fd, Buffer.from(line));
          return;
        }
      }
    }
    this.used += this.buffer.write(line, this.used);
  }

  /** Writes out what is queued, now. */
  flushSync(): void {
    if (this.used === 0) return;
    const queued = this.used;
    this.used = 0;
    writeAll(this.fd, this.buffer.subarray(0, queued));
  }

  /** After log rotation moved the file away (SIGHUP): later lines go to a new file of the same name. */
  reopen(): void {
    if (typeof this.dest === 'number' || this.closed) return;
    this.flushSync();
    const previous = this.fd;
    this.fd = LineDestination.openFile(this.dest);
    closeSync(previous);
  }

  /** Writes out what is queued and stops; a file is closed, a descriptor given (stdout) stays open. */
  end(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    clearInterval(this.timer);
    open.delete(this);
    if (typeof this.dest === 'string') closeSync(this.fd);
  }
}

export function batchedLines(dest: number | string): LineDestination {
  return new LineDestination(dest);
}
