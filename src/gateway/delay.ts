/**
 * Calls `fire` once `ms` have passed, unless the returned function cancels it first. Shutdown's grace period and the
 * readiness checks' limit wait through one of these, so that tests can pass the time by hand.
 */
export type Delay = (ms: number, fire: () => void) => () => void;

export const realDelay: Delay = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  return () => clearTimeout(timer);
};
