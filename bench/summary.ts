#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { CaseResult } from './lib/measure.js';
import { judgeRuns, type JudgedRun } from './lib/summary.js';
import { judgeTargets } from './lib/targets.js';

interface Recorded {
  readonly started?: string;
  readonly smoke?: boolean;
  readonly results?: CaseResult[];
}

const program = new Command()
  .name('bench-summary')
  .description("issues 7 and 30's targets judged over several bench runs (their results JSON), by today's rules")
  .argument('<results...>', 'bench/results/<timestamp>.json files')
  .action((files: string[]) => {
    const runs: JudgedRun[] = [];
    for (const file of files) {
      const recorded = JSON.parse(readFileSync(file, 'utf8')) as Recorded;
      if (!Array.isArray(recorded.results)) throw new Error(`${file} is not a bench results file (no "results")`);
      if (recorded.smoke === true) {
        process.stderr.write(`bench-summary: ${file} is a smoke run (its numbers mean nothing): left out\n`);
        continue;
      }
      runs.push({ started: recorded.started ?? file, verdicts: judgeTargets(recorded.results) });
    }
    if (runs.length === 0) throw new Error('no full runs among the files given');
    process.stdout.write(`${judgeRuns(runs)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bench-summary: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
});
