import { median } from './measure.js';
import { meets, show, type Outcome, type Unit, type Verdict } from './targets.js';

/** One run's verdicts, named by when it started. */
export interface JudgedRun {
  readonly started: string;
  readonly verdicts: readonly Verdict[];
}

const range = (values: readonly number[], unit: Unit): string => {
  const sorted = [...values].sort((a, b) => a - b);
  const [low, high] = [show(sorted[0] as number, unit), show(sorted[sorted.length - 1] as number, unit)];
  return low === high ? '' : ` (${low} to ${high})`;
};

/**
 * Issue 7's targets over several runs, as the issue asks ("the machine is noisy, so report medians of several runs"):
 * for each target the median of the gateway's figure over the runs that measured it, the peers' medians beside it,
 * how many of those runs met it on their own, and the verdict on the medians, by the same bound as one run's.
 */
export function judgeRuns(runs: readonly JudgedRun[]): string {
  const targets = [...new Set(runs.flatMap((r) => r.verdicts.map((v) => v.target)))];
  const lines = [
    `Issues 7 and 30's targets over ${runs.length} runs (${runs.map((r) => r.started).join(', ')}):`,
    '',
    "| target (issue) | gateway: median of the runs (range) | peers: medians | runs that met it on their own | verdict on the medians |",
    '| --- | --- | --- | --- | --- |',
  ];
  for (const target of targets) {
    const judged = runs.flatMap((r) => r.verdicts.filter((v) => v.target === target && v.met !== undefined && v.figure !== undefined));
    const first = judged[0];
    if (first?.unit === undefined || first.bound === undefined) {
      lines.push(`| ${target} | not in these runs | | | - |`);
      continue;
    }
    const unit = first.unit;
    const figures = judged.map((v) => v.figure as number);
    const figure = median(figures);
    const peerNames = [...new Set(judged.flatMap((v) => Object.keys(v.peerFigures ?? {})))];
    const peerMedians: Record<string, number> = {};
    for (const name of peerNames) {
      const values = judged.flatMap((v) => {
        const value = v.peerFigures?.[name];
        return value === undefined ? [] : [value];
      });
      peerMedians[name] = median(values);
    }
    const count = (o: Outcome): number => judged.filter((v) => v.met === o).length;
    const split = count('split');
    const metCount = `${count('met')} of ${judged.length}${split > 0 ? ` (${split} unclear)` : ''}`;
    const peers = peerNames.map((name) => `${name} ${show(peerMedians[name] as number, unit)}`).join(', ') || '-';
    const verdict = meets(first.bound, figure, peerMedians) ? 'met' : 'missed';
    lines.push(`| ${target} | ${show(figure, unit)}${range(figures, unit)} | ${peers} | ${metCount} | ${verdict} |`);
  }
  return lines.join('\n');
}
