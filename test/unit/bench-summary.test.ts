import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarize, type CaseResult } from '../../bench/lib/measure.js';
import { judgeRuns, type JudgedRun } from '../../bench/lib/summary.js';
import { judgeTargets } from '../../bench/lib/targets.js';

const c = (scenario: string, caseName: string, target: string, runs: Array<Record<string, number>>): CaseResult =>
  summarize(scenario, caseName, target, runs);

/** One full run's scenario 1 (one round each): direct 1000 requests a second. */
const run = (started: string, gateway: number, kubectlProxy: number, extra: CaseResult[] = []): JudgedRun => ({
  started,
  verdicts: judgeTargets([
    c('1 small GET, real apiserver', 'c16', 'direct', [{ rps: 1000 }]),
    c('1 small GET, real apiserver', 'c16', 'gateway', [{ rps: gateway }]),
    c('1 small GET, real apiserver', 'c16', 'kubectl proxy', [{ rps: kubectlProxy }]),
    ...extra,
  ]),
});

function row(table: string, prefix: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`| ${prefix}`));
  assert.ok(line !== undefined, `a row for ${prefix} in\n${table}`);
  return line.split('|').map((cell) => cell.trim()).slice(1, -1);
}

describe('issue 7 over several bench runs (bench/lib/summary.ts)', () => {
  it("gives the median of the gateway's figure, its range, the peers' medians and how many runs met it alone", () => {
    const table = judgeRuns([run('a', 720, 650), run('b', 600, 700), run('c', 710, 640)]);
    // Met: the median 0.71x is >= 0.70x and ahead of the median kubectl proxy (0.65x).
    assert.deepEqual(row(table, '1:').slice(1), ['0.71x (0.60x to 0.72x)', 'kubectl proxy 0.65x', '2 of 3', 'met']);
    assert.match(table, /over 3 runs \(a, b, c\)/);
  });

  it('judges the medians by the same bound: behind the median kubectl proxy is missed, whatever single runs did', () => {
    const table = judgeRuns([run('a', 720, 650), run('b', 720, 760), run('c', 730, 740)]);
    assert.deepEqual(row(table, '1:').slice(1), ['0.72x (0.72x to 0.73x)', 'kubectl proxy 0.74x', '1 of 3', 'missed']);
  });

  it('counts only the runs that measured a target, notes unclear runs, and says when no run measured it', () => {
    const list = (gatewayRounds: number[]): CaseResult[] => [
      c('3 large LIST', '5000 ConfigMaps', 'direct', [{ totalMs: 100 }, { totalMs: 60 }, { totalMs: 200 }]),
      c('3 large LIST', '5000 ConfigMaps', 'gateway', gatewayRounds.map((totalMs) => ({ totalMs, rssGrowthMb: 1, mb: 11 }))),
    ];
    // The first run's LIST is unclear (medians 1.00x, rounds' median 1.50x); the second's is met (1.00x and 1.00x).
    const table = judgeRuns([run('a', 720, 650, list([150, 90, 100])), run('b', 720, 650, list([100, 60, 200])), run('c', 720, 650)]);
    const [, gateway, , metAlone, verdict] = row(table, '3: large LIST: total time');
    assert.equal(gateway, '1.00x');
    assert.equal(metAlone, '1 of 2 (1 unclear)');
    assert.equal(verdict, 'met');
    assert.deepEqual(row(table, '5: streams, docker attach').slice(1), ['not in these runs', '', '', '-']);
  });

  it('judges counts exactly: N validations for N new tokens', () => {
    const burst = (validations: number): CaseResult[] => [c('6 auth', '1000 concurrent requests, 100 new tokens', 'gateway', [{ keystoneValidations: validations, totalMs: 1 }])];
    const met = judgeRuns([run('a', 720, 650, burst(100)), run('b', 720, 650, burst(100))]);
    assert.deepEqual(row(met, '6: concurrent').slice(1), ['100 validations', '-', '2 of 2', 'met']);
    const missed = judgeRuns([run('a', 720, 650, burst(100)), run('b', 720, 650, burst(101)), run('c', 720, 650, burst(101))]);
    assert.equal(row(missed, '6: concurrent')[4], 'missed');
  });

  it('the command reads results files, leaves smoke runs out and says so', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-summary-'));
    try {
      const results = (gateway: number): CaseResult[] => [
        c('1 small GET, real apiserver', 'c16', 'direct', [{ rps: 1000 }]),
        c('1 small GET, real apiserver', 'c16', 'gateway', [{ rps: gateway }]),
      ];
      const full = path.join(dir, 'full.json');
      const smoke = path.join(dir, 'smoke.json');
      writeFileSync(full, JSON.stringify({ started: '2026-11-30T18:00:00.000Z', smoke: false, results: results(750) }));
      writeFileSync(smoke, JSON.stringify({ started: '2026-11-30T18:30:00.000Z', smoke: true, results: results(100) }));
      const cli = fileURLToPath(new URL('../../bench/summary.js', import.meta.url));
      const r = spawnSync(process.execPath, [cli, full, smoke], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /smoke\.json is a smoke run .*left out/);
      assert.match(r.stdout, /over 1 runs \(2026-11-30T18:00:00\.000Z\)/);
      assert.deepEqual(row(r.stdout, '1:').slice(1), ['0.75x', '-', '1 of 1', 'met']);
      const onlySmoke = spawnSync(process.execPath, [cli, smoke], { encoding: 'utf8' });
      assert.equal(onlySmoke.status, 2);
      assert.match(onlySmoke.stderr, /no full runs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
