/**
 * Runs `next` with what `produce` gives: at once when that is a value, once it resolves when it is a promise. An
 * error thrown or rejected on the way, `next`'s own included, goes to `fail`. The request path uses it so that a
 * cached verdict costs neither a promise nor a turn of the event loop.
 */
export function settle<T>(produce: () => T | Promise<T>, next: (value: T) => void, fail: (err: unknown) => void): void {
  let produced: T | Promise<T>;
  try {
    produced = produce();
  } catch (err) {
    fail(err);
    return;
  }
  if (produced instanceof Promise) {
    produced.then(next).catch(fail);
    return;
  }
  try {
    next(produced);
  } catch (err) {
    fail(err);
  }
}
