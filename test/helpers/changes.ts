/**
 * Tells waiting tests that something changed (a request arrived, a connection closed, a record was written), so that
 * a test waits for the condition it needs rather than sleeping or polling. No deadline of its own: a condition that
 * never comes is mocha's timeout.
 */
export class Changes {
  private waiters: Array<() => void> = [];

  /** Call after every change a test may wait for. */
  notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once `holds()` is true: checked now, then after each change. */
  async until(holds: () => boolean): Promise<void> {
    while (!holds()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Deadlines on a clock the test moves: what `AbortSignal.timeout(ms)` makes, fired when `advance` passes them (or by
 * hand with `expire`).
 */
export class ManualDeadlines {
  readonly made: Array<{ readonly ms: number; readonly due: number; readonly controller: AbortController }> = [];
  readonly changes = new Changes();
  private now = 0;

  /** The factory to inject in place of AbortSignal.timeout. */
  readonly signal = (ms: number): AbortSignal => {
    const controller = new AbortController();
    this.made.push({ ms, due: this.now + ms, controller });
    this.changes.notify();
    return controller.signal;
  };

  /** The clock moves on by `ms`: every deadline it passes expires. */
  advance(ms: number): void {
    this.now += ms;
    this.made.forEach((d, i) => {
      if (d.due <= this.now && !d.controller.signal.aborted) this.expire(i);
    });
  }

  /** The `i`th deadline made passes, as AbortSignal.timeout's would (a TimeoutError). */
  expire(i: number): void {
    const made = this.made[i];
    if (made === undefined) throw new Error(`only ${this.made.length} deadlines were made`);
    made.controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }

  /** How many of the deadlines made have passed. */
  get expired(): number {
    return this.made.filter((d) => d.controller.signal.aborted).length;
  }
}
