#!/usr/bin/env node
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { CaseResult } from './lib/measure.js';
import { judgeTargets, targetsTable } from './lib/targets.js';
import { makeWorld, stopAll, type World } from './lib/world.js';
import { auth } from './scenarios/auth.js';
import { docker } from './scenarios/docker.js';
import { largeList } from './scenarios/large-list.js';
import { FULL, SMOKE, type BenchOptions } from './scenarios/options.js';
import { smallGetApiserver, smallGetFastUpstream } from './scenarios/small-get.js';
import { streams } from './scenarios/streams.js';
import { watches } from './scenarios/watches.js';

const SCENARIOS: Record<string, (world: World, options: BenchOptions) => Promise<CaseResult[]>> = {
  '1': smallGetApiserver,
  '2': smallGetFastUpstream,
  '3': largeList,
  '4': watches,
  '5': streams,
  '6': auth,
  '7': docker,
};

/** The metric a case is judged by, and whether more is better. */
const HEADLINE: Array<[string, boolean]> = [
  ['rps', true],
  ['mbPerS', true],
  ['totalMs', false],
  ['eventP99Ms', false],
  ['createMs', false],
];

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Rows with each target's headline metric as a ratio to `direct` in the same case. */
export function table(results: readonly CaseResult[]): string {
  const lines = ['| scenario | case | target | metrics (medians) | vs direct |', '| --- | --- | --- | --- | --- |'];
  for (const r of results) {
    const direct = results.find((d) => d.scenario === r.scenario && d.case === r.case && d.target === 'direct');
    let ratio = '';
    const headline = HEADLINE.find(([k]) => r.metrics[k] !== undefined);
    if (direct !== undefined && headline !== undefined && r.target !== 'direct') {
      const [key, more] = headline;
      const x = more ? (r.metrics[key] as number) / (direct.metrics[key] as number) : (direct.metrics[key] as number) / (r.metrics[key] as number);
      ratio = `${x.toFixed(2)}x (${key})`;
    }
    const metrics = Object.entries(r.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    lines.push(`| ${r.scenario} | ${r.case} | ${r.target} | ${metrics} | ${ratio} |`);
  }
  return lines.join('\n');
}

const program = new Command()
  .name('bench')
  .description('zun-gateway against direct access, nginx, kubectl proxy and a minimal node:http proxy (needs the e2e env)')
  .option('--smoke', 'a few seconds: proves every scenario and target still works; numbers mean nothing')
  .option('--only <list>', 'comma-separated scenario numbers (1-7)', Object.keys(SCENARIOS).join(','))
  .option('--seconds <n>', 'seconds per load measurement')
  .option('--runs <n>', 'rounds per case (medians are reported)')
  .option('--concurrency <list>', 'comma-separated connection counts for the load scenarios (1, 2)')
  .option('--out <dir>', 'where results go', 'bench/results')
  .action(async (opts: { smoke?: boolean; only: string; seconds?: string; runs?: string; concurrency?: string; out: string }) => {
    const base = opts.smoke ? SMOKE : FULL;
    const options: BenchOptions = {
      ...base,
      ...(opts.seconds !== undefined ? { seconds: Number(opts.seconds) } : {}),
      ...(opts.runs !== undefined ? { runs: Number(opts.runs) } : {}),
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency.split(',').map(Number) } : {}),
    };
    const world = await makeWorld();
    const results: CaseResult[] = [];
    const failures: Array<{ scenario: string; error: string }> = [];
    const started = new Date();
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    mkdirSync(opts.out, { recursive: true });
    // Written after every scenario, so a scenario that fails (or a run that is stopped) keeps what came before it.
    const save = (): string => {
      const text =
        table(results) +
        `\n\nAgainst issues 7 and 30's targets:\n\n${targetsTable(judgeTargets(results), options.smoke)}` +
        (failures.length > 0 ? `\n\nFailed: ${failures.map((f) => `scenario ${f.scenario}: ${f.error}`).join('; ')}` : '');
      const record = {
        started: started.toISOString(),
        smoke: options.smoke,
        options,
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release() },
        results,
        targets: judgeTargets(results),
        failures,
      };
      writeFileSync(path.join(opts.out, `${stamp}.json`), `${JSON.stringify(record, null, 1)}\n`);
      writeFileSync(path.join(opts.out, `${stamp}.md`), `# Benchmark ${started.toISOString()}${options.smoke ? ' (smoke)' : ''}\n\n${text}\n`);
      return text;
    };
    const ids = opts.only.split(',').map((s) => s.trim());
    const unknown = ids.filter((id) => SCENARIOS[id] === undefined);
    if (unknown.length > 0) throw new Error(`no scenario ${unknown.join(', ')} (there are ${Object.keys(SCENARIOS).join(', ')})`);
    try {
      for (const id of ids) {
        const scenario = SCENARIOS[id] as (typeof SCENARIOS)[string];
        const t = performance.now();
        process.stderr.write(`bench: scenario ${id} ...\n`);
        try {
          results.push(...(await scenario(world, options)));
          process.stderr.write(`bench: scenario ${id} done in ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          failures.push({ scenario: id, error });
          process.stderr.write(`bench: scenario ${id} FAILED after ${((performance.now() - t) / 1000).toFixed(0)} s: ${error}\n`);
        } finally {
          await stopAll(world);
        }
        save();
      }
    } finally {
      await stopAll(world);
    }
    process.stdout.write(`${save()}\n`);
    process.stderr.write(`bench: results in ${path.join(opts.out, `${stamp}.json`)}\n`);
    if (failures.length > 0) process.exitCode = 1;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
