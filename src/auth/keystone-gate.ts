/**
 * How many calls the gateway has at Keystone at once. Keystone answers a burst of new tokens (a CI job starting,
 * a hundred kubectl processes) one worker at a time: sent all at once, the calls queue inside Keystone and the last
 * ones pass their timeout although Keystone is working. Queued here instead, each call is timed only once it is
 * sent. A call that fails because Keystone is unreachable or silent tells everyone waiting at once (they would only
 * queue behind it), and nobody waits longer than `maxWaitMs`.
 */
export class KeystoneGate {
  private active = 0;
  private readonly waiting: Array<{ readonly start: () => void; readonly fail: (err: Error) => void }> = [];

  constructor(
    private readonly limit: number,
    private readonly maxWaitMs: number,
    private readonly busy: (waitedMs: number) => Error,
  ) {}

  /** Runs `task` once fewer than `limit` calls are under way. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active += 1;
    else await this.queue();
    try {
      return await task();
    } finally {
      this.leave();
    }
  }

  /** Keystone cannot be reached: every waiting call fails now with `err`, rather than after its own timeout. */
  failWaiting(err: Error): void {
    for (const w of this.waiting.splice(0)) w.fail(err);
  }

  /** Calls waiting for their turn (for tests and metrics). */
  get queued(): number {
    return this.waiting.length;
  }

  private queue(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(this.busy(this.maxWaitMs));
      }, this.maxWaitMs);
      timer.unref();
      const entry = {
        start: () => {
          clearTimeout(timer);
          this.active += 1;
          resolve();
        },
        fail: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiting.push(entry);
    });
  }

  private leave(): void {
    this.active -= 1;
    this.waiting.shift()?.start();
  }
}
