/**
 * One holder at a time per key: the container quota's count and the create it allows happen as one step per project
 * (ten creates sent at once would all count the same containers and all pass). Keys nobody holds or waits for are
 * forgotten. Per gateway process: replicas behind a load balancer can still overshoot by one create each.
 */
export class PerKeySerial {
  private readonly tails = new Map<string, Promise<void>>();

  /** Resolves, once every earlier holder of `key` has released it, with the release function (safe to call twice). */
  async acquire(key: string): Promise<() => void> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      open();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** How many keys are held or waited for (for tests: nothing is kept for keys no longer in use). */
  get size(): number {
    return this.tails.size;
  }
}
