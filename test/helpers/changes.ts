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

/** A clock in ms since the epoch that moves only when the test says (to inject as a `now`). */
export class ManualClock {
  private ms = Date.now();
  readonly now = (): number => this.ms;

  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Delays (gateway/delay.ts) that fire when the test moves their clock on. */
export class ManualDelays {
  private now = 0;
  private readonly pending: Array<{ readonly ms: number; readonly due: number; readonly fire: () => void }> = [];
  readonly changes = new Changes();

  readonly delay = (ms: number, fire: () => void): (() => void) => {
    const entry = { ms, due: this.now + ms, fire };
    this.pending.push(entry);
    this.changes.notify();
    return () => {
      const i = this.pending.indexOf(entry);
      if (i >= 0) this.pending.splice(i, 1);
      this.changes.notify();
    };
  };

  /** How many delays of `ms` are waiting. */
  waiting(ms: number): number {
    return this.pending.filter((d) => d.ms === ms).length;
  }

  /** The clock moves on by `ms`: every delay it passes fires, earliest first. */
  advance(ms: number): void {
    this.now += ms;
    for (const entry of [...this.pending].sort((a, b) => a.due - b.due)) {
      if (entry.due > this.now) break;
      this.pending.splice(this.pending.indexOf(entry), 1);
      entry.fire();
    }
  }
}
