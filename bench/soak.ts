#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Command } from 'commander';
import { adminKubectl, mustSucceed, tenantKubeconfig } from '../test/e2e/support/kubectl.js';
import { run } from '../test/e2e/support/run.js';
import { apply, tenantNamespace } from './lib/cluster.js';
import { openFds, rssBytes } from './lib/processes.js';
import { makeWorld, startGateway, stopAll } from './lib/world.js';

/**
 * The soak (issue 8): one gateway under a steady mixed load for a fixed time (GET, LIST, watch churn, exec, docker ps
 * and run), its RSS and open descriptors sampled throughout. It stops by itself, uses loopback only, and fails when
 * any request got an answer it should not have, or memory or descriptors kept growing.
 * `npm run soak` (10 minutes), `npm run soak -- --seconds 20` (a quick look).
 */

const NAMESPACE = 'bench-soak';
const POD = 'soak-sleeper';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tally {
  ok: number;
  errors: number;
  lastError?: string;
}

interface Sample {
  readonly atS: number;
  readonly rssMb: number;
  readonly fds: number;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const program = new Command()
  .name('soak')
  .description('a steady mixed load through one gateway for a fixed time; RSS and descriptors must stay flat (needs the e2e env)')
  .option('--seconds <n>', 'how long the load runs', '600')
  .option('--out <dir>', 'where results go', 'bench/results')
  .action(async (opts: { seconds: string; out: string }) => {
    const seconds = Number(opts.seconds);
    const world = await makeWorld();
    const started = new Date();
    try {
      await tenantNamespace(NAMESPACE, world.projectId, 'edit');
      await apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: POD, namespace: NAMESPACE },
        spec: {
          terminationGracePeriodSeconds: 1,
          hostNetwork: true,
          containers: [{ name: 'sleeper', image: world.env.busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '86400'] }],
        },
      });
      await mustSucceed(adminKubectl(['wait', '--for=condition=Ready', `pod/${POD}`, '-n', NAMESPACE, '--timeout=120s']), 'soak pod ready');
      await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'soak', namespace: NAMESPACE }, data: { a: 'b' } });
      const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
      const root = gateway.base.replace(/\/k8s$/, '');
      const agent = new https.Agent({ keepAlive: true, ca: readFileSync(world.env.tlsCa), maxSockets: 32 });
      const call = (method: string, url: string, body?: unknown): Promise<{ status: number; text: string }> =>
        new Promise((resolve, reject) => {
          const payload = body === undefined ? undefined : JSON.stringify(body);
          const req = https.request(
            url,
            { method, agent, headers: { 'x-auth-token': world.token, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) } },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString('utf8')));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            },
          );
          req.on('error', reject);
          req.end(payload);
        });

      const tallies: Record<string, Tally> = {};
      const count = async (kind: string, work: () => Promise<boolean | string>): Promise<void> => {
        const t = (tallies[kind] ??= { ok: 0, errors: 0 });
        try {
          const outcome = await work();
          if (outcome === true) t.ok += 1;
          else {
            t.errors += 1;
            t.lastError = String(outcome);
          }
        } catch (err) {
          t.errors += 1;
          t.lastError = err instanceof Error ? err.message : String(err);
        }
      };
      const deadline = Date.now() + seconds * 1000;
      const loop = async (kind: string, pauseMs: number, work: () => Promise<boolean | string>): Promise<void> => {
        while (Date.now() < deadline) {
          await count(kind, work);
          if (pauseMs > 0) await sleep(pauseMs);
        }
      };
      const k8s = `${root}/k8s/api/v1/namespaces/${NAMESPACE}`;
      const docker = `${root}/docker/v1.41`;
      const watchChurn = (): Promise<boolean | string> =>
        new Promise((resolve) => {
          const req = https.get(`${k8s}/configmaps?watch=1`, { agent: new https.Agent({ ca: readFileSync(world.env.tlsCa) }), headers: { 'x-auth-token': world.token } }, (res) => {
            if (res.statusCode !== 200) return resolve(`watch: HTTP ${res.statusCode}`);
            res.resume();
            setTimeout(() => {
              req.destroy();
              resolve(true);
            }, 2000);
          });
          req.on('error', (err) => (req.destroyed ? undefined : resolve(err.message)));
        });
      const config = tenantKubeconfig(root, world.token, NAMESPACE);
      const kubectlEnv = { PATH: process.env.PATH ?? '', HOME: world.dir };

      const samples: Sample[] = [];
      const t0 = performance.now();
      const sampler = setInterval(() => {
        samples.push({ atS: (performance.now() - t0) / 1000, rssMb: rssBytes(gateway.pid) / 2 ** 20, fds: openFds(gateway.pid) });
      }, 5000);
      process.stderr.write(`soak: ${seconds} s of mixed load through one gateway ...\n`);
      await Promise.all([
        ...Array.from({ length: 4 }, () => loop('GET configmap', 0, async () => (await call('GET', `${k8s}/configmaps/soak`)).status === 200 || 'GET: not 200')),
        loop('LIST configmaps', 200, async () => (await call('GET', `${k8s}/configmaps`)).status === 200 || 'LIST: not 200'),
        ...Array.from({ length: 10 }, () => loop('watch (2 s, then gone)', 0, watchChurn)),
        loop('kubectl exec', 2000, async () => {
          const r = await run(world.kubectl, ['--kubeconfig', config, 'exec', POD, '--', 'echo', 'soak-ok'], { env: kubectlEnv, timeoutMs: 60_000 });
          return (r.code === 0 && r.stdout.includes('soak-ok')) || `exec: ${r.code} ${r.stderr.slice(0, 200)}`;
        }),
        loop('docker ps', 500, async () => (await call('GET', `${docker}/containers/json`)).status === 200 || 'docker ps: not 200'),
        loop('docker run (create, start, wait, rm)', 3000, async () => {
          const created = await call('POST', `${docker}/containers/create`, { Image: world.env.busyboxImage, Cmd: ['true'] });
          if (created.status !== 201) return `create: ${created.status} ${created.text.slice(0, 200)}`;
          const id = (JSON.parse(created.text) as { Id: string }).Id;
          const startedC = await call('POST', `${docker}/containers/${id}/start`);
          const waited = await call('POST', `${docker}/containers/${id}/wait`);
          const removed = await call('DELETE', `${docker}/containers/${id}?force=1`);
          return (startedC.status === 204 && waited.status === 200 && removed.status === 204) || `run: start ${startedC.status}, wait ${waited.status}, rm ${removed.status}`;
        }),
      ]);
      clearInterval(sampler);
      agent.destroy();
      await sleep(3000);
      samples.push({ atS: (performance.now() - t0) / 1000, rssMb: rssBytes(gateway.pid) / 2 ** 20, fds: openFds(gateway.pid) });

      // Flat: over the second half (after warm-up), RSS grows by less than 1 MB a minute and descriptors end where
      // they were at half time (give or take the pool's spares).
      const half = samples.filter((s) => s.atS >= seconds / 2);
      const rssSlopeMbPerMin = slope(half.map((s) => [s.atS / 60, s.rssMb] as const));
      const first = half[0] ?? samples[0];
      const last = samples[samples.length - 1];
      const errors = Object.values(tallies).reduce((n, t) => n + t.errors, 0);
      const summary = {
        started: started.toISOString(),
        seconds,
        tallies,
        errors,
        rss: { firstMb: samples[0]?.rssMb, halfMb: first?.rssMb, lastMb: last?.rssMb, maxMb: Math.max(...samples.map((s) => s.rssMb)), secondHalfSlopeMbPerMin: rssSlopeMbPerMin },
        fds: { first: samples[0]?.fds, half: first?.fds, last: last?.fds, max: Math.max(...samples.map((s) => s.fds)) },
        samples,
      };
      const stamp = started.toISOString().replace(/[:.]/g, '-');
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(path.join(opts.out, `soak-${stamp}.json`), `${JSON.stringify(summary, null, 1)}\n`);
      const lines = [
        `soak: ${seconds} s, ${errors} unexpected answers`,
        ...Object.entries(tallies).map(([k, t]) => `  ${k}: ${t.ok} ok, ${t.errors} errors${t.lastError !== undefined ? ` (last: ${t.lastError})` : ''}`),
        `  gateway RSS: ${summary.rss.firstMb?.toFixed(1)} MB at start, ${summary.rss.halfMb?.toFixed(1)} at half time, ${summary.rss.lastMb?.toFixed(1)} at the end (max ${summary.rss.maxMb.toFixed(1)}); second half ${rssSlopeMbPerMin.toFixed(2)} MB/min`,
        `  gateway descriptors: ${summary.fds.first} at start, ${summary.fds.half} at half time, ${summary.fds.last} at the end (max ${summary.fds.max})`,
        `  results in ${path.join(opts.out, `soak-${stamp}.json`)}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      // Growth is judged on runs of two minutes or more; a shorter one (the e2e suite's) only checks the answers.
      const flat = seconds < 120 || (rssSlopeMbPerMin < 1 && (last?.fds ?? 0) <= (first?.fds ?? 0) + 8);
      if (!flat) process.stdout.write('soak: the gateway kept growing\n');
      if (errors > 0 || !flat) process.exitCode = 1;
    } finally {
      await stopAll(world);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
