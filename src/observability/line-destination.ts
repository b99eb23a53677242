import { destination, type DestinationStream } from 'pino';

/** Lines are written once this much is queued ... */
const BATCH_BYTES = 4096;
/** ... or at the latest after this long. */
const FLUSH_INTERVAL_MS = 1000;

/** Every open writer, written out when the process exits (pino does this only for its asynchronous writers). */
const open = new Set<LineDestination>();
let exitHook = false;

function flushAllAtExit(): void {
  for (const stream of open) {
    try {
      stream.flushSync();
    } catch {
      // Already closed, or the descriptor is gone: nothing more can be written.
    }
  }
}

export type LineDestination = DestinationStream & { flushSync(): void; reopen(file?: string): void; end(): void };

/**
 * A batching writer (pino's sonic-boom) for the log and the audit trail: lines queue in memory and go out in one
 * synchronous write per few kilobytes, instead of one write per line, which on the request path was most of what
 * logging cost (docs/performance.md; asynchronous writes measured worse: each one is a thread-pool round trip).
 * Queued lines go out within a second, and at exit; a SIGKILL loses at most the last second. Like pino's own
 * stdout default the writes are synchronous, so a stdout nobody reads stalls the gateway rather than growing memory.
 */
export function batchedLines(dest: number | string): LineDestination {
  const stream = destination({ dest, sync: true, minLength: BATCH_BYTES, ...(typeof dest === 'string' ? { mkdir: true, append: true } : {}) });
  const timer = setInterval(() => {
    try {
      stream.flush();
    } catch {
      // Closed at exit: nothing left to write.
    }
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  const lines = stream as LineDestination;
  open.add(lines);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', flushAllAtExit);
  }
  stream.on('close', () => {
    clearInterval(timer);
    open.delete(lines);
  });
  return lines;
}
