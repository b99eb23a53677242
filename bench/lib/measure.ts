/** One measured case of a scenario: a target's median over the runs, the runs kept for the record. */
export interface CaseResult {
  readonly scenario: string;
  readonly case: string;
  readonly target: string;
  /** Medians of each metric over the runs. */
  readonly metrics: Record<string, number>;
  readonly runs: ReadonlyArray<Record<string, number>>;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)] as number;
}

export function summarize(scenario: string, caseName: string, target: string, runs: ReadonlyArray<Record<string, number>>): CaseResult {
  const metrics: Record<string, number> = {};
  for (const key of Object.keys(runs[0] ?? {})) metrics[key] = median(runs.map((r) => r[key] as number));
  return { scenario, case: caseName, target, metrics, runs };
}

/**
 * Runs `measure` for every target `runs` times, rotating the order each round so no target always goes first
 * (caches, CPU frequency, the apiserver's own warm-up).
 */
export async function alternate<T extends { name: string }>(
  targets: readonly T[],
  runs: number,
  measure: (target: T) => Promise<Record<string, number>>,
): Promise<Map<string, Array<Record<string, number>>>> {
  const results = new Map<string, Array<Record<string, number>>>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < runs; round += 1) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as T);
    for (const target of order) results.get(target.name)?.push(await measure(target));
  }
  return results;
}
