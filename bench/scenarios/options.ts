export interface BenchOptions {
  /** Seconds per load measurement. */
  readonly seconds: number;
  /** Rounds per case; medians are reported. */
  readonly runs: number;
  readonly concurrency: readonly number[];
  /** ConfigMaps in the large LIST. */
  readonly listItems: number;
  readonly watches: number;
  /** Bytes pushed through each stream. */
  readonly streamBytes: number;
  /** Distinct new tokens in the concurrent authentication case (ten requests each). */
  readonly newTokens: number;
  readonly smoke: boolean;
}

export const FULL: BenchOptions = {
  seconds: 8,
  runs: 3,
  concurrency: [1, 16, 64],
  listItems: 5000,
  watches: 2000,
  streamBytes: 256 * 1024 * 1024,
  newTokens: 100,
  smoke: false,
};

/** A few seconds in all: proves the harness and every target still work (CI), measures nothing worth keeping. */
export const SMOKE: BenchOptions = {
  seconds: 1,
  runs: 1,
  // The concurrency the targets of scenarios 1 and 2 name, so the smoke run reaches every verdict (it judges none).
  concurrency: [16],
  listItems: 50,
  watches: 20,
  streamBytes: 1024 * 1024,
  newTokens: 5,
  smoke: true,
};
