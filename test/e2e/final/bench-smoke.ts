import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../support/run.js';

/** What every scenario must report, per target (bench/run.ts; issue 7). */
const EXPECTED: Record<string, string[]> = {
  // With issue 30's like-for-like pairs: the gateway with and without extras, on TLS and plain listeners, against
  // kubectl proxy with the same identity; the gateway's ordinary requests on HTTP/2.
  '1 small GET, real apiserver': [
    'direct',
    'direct, no extras',
    'gateway',
    'gateway, no extras',
    'gateway, plain HTTP',
    'gateway, plain HTTP, no extras',
    'gateway, HTTP/2 requests',
    'nginx',
    'kubectl proxy',
    'kubectl proxy, --as',
    'node:https relay',
  ],
  '2 small GET, fast upstream': ['direct', 'gateway', 'nginx', 'node:http proxy'],
  '3 large LIST': ['direct', 'gateway', 'nginx', 'kubectl proxy', 'node:https relay'],
  '4 watches': ['direct', 'gateway', 'gateway, two processes', 'nginx', 'kubectl proxy', 'node:https relay'],
  // exec: direct, gateway, nginx, kubectl proxy; attach: direct, engine TLS, gateway, nginx.
  '5 streams': ['direct', 'gateway', 'nginx', 'kubectl proxy', 'engine TLS'],
};

interface Result {
  readonly scenario: string;
  readonly case: string;
  readonly target: string;
  readonly metrics: Record<string, number>;
}

/**
 * The benchmark harness in its smoke form (a few seconds per scenario, numbers meaningless) against the real e2e
 * systems, so `npm run bench` keeps working. Runs after the other specs (listed before the secrets check in
 * .mocharc.e2e.json): its load must not slow them down. No timing is asserted.
 */
describe('benchmark harness (smoke, real systems)', function () {
  it('runs all seven scenarios against every target and records them', async function () {
    this.timeout(600_000);
    const out = mkdtempSync(path.join(os.tmpdir(), 'zgw-bench-smoke-'));
    try {
      const r = await run(process.execPath, ['dist/bench/run.js', '--smoke', '--out', out], { timeoutMs: 540_000, env: process.env });
      assert.equal(r.code, 0, `bench --smoke failed:\n${r.stderr.slice(-4000)}`);
      const files = readdirSync(out);
      const json = files.find((f) => f.endsWith('.json'));
      assert.ok(json !== undefined && files.some((f) => f.endsWith('.md')), `results written (${files.join(', ')})`);
      const record = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as {
        smoke: boolean;
        results: Result[];
        targets: Array<{ target: string; met?: string }>;
      };
      assert.equal(record.smoke, true);
      const scenarios = new Set(record.results.map((x) => x.scenario.split(' ')[0]));
      assert.deepEqual([...scenarios].sort(), ['1', '2', '3', '4', '5', '6', '7']);
      for (const [scenario, targets] of Object.entries(EXPECTED)) {
        const got = new Set(record.results.filter((x) => x.scenario === scenario).map((x) => x.target));
        assert.deepEqual([...got].sort(), [...targets].sort(), `targets of ${scenario}`);
      }
      for (const x of record.results) {
        for (const [k, v] of Object.entries(x.metrics)) assert.ok(Number.isFinite(v), `${x.scenario} ${x.case} ${x.target}: ${k} = ${v}`);
      }
      assert.match(r.stdout, /\| scenario \| case \| target \|/, 'the table is printed');
      // Every target of issues 7 and 30 is judged from the run's own cases (bench/lib/targets.ts); a smoke run only shows them.
      assert.equal(record.targets.length, 22, record.targets.map((t) => t.target).join('\n'));
      for (const t of record.targets) assert.ok(t.met !== undefined, `the smoke run has the cases for: ${t.target}`);
      assert.match(r.stdout, /Against issues 7 and 30's targets:[\s\S]*smoke run: not judged/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the soak (bench/soak.ts), for 15 seconds: every kind of load runs and every answer is the expected one', async function () {
    this.timeout(300_000);
    const out = mkdtempSync(path.join(os.tmpdir(), 'zgw-soak-smoke-'));
    try {
      const r = await run(process.execPath, ['dist/bench/soak.js', '--seconds', '15', '--out', out], { timeoutMs: 280_000, env: process.env });
      assert.equal(r.code, 0, `soak failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
      assert.match(r.stdout, /0 unexpected answers/);
      for (const kind of ['GET configmap', 'LIST configmaps', 'watch', 'kubectl exec', 'docker ps', 'docker run']) {
        assert.match(r.stdout, new RegExp(`${kind}[^:]*: [1-9]\\d* ok, 0 errors`), `${kind} ran`);
      }
      assert.ok(readdirSync(out).some((f) => f.startsWith('soak-') && f.endsWith('.json')), 'results written');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
