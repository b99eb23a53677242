import { apply } from '../lib/cluster.js';
import { treeCpuSeconds } from '../lib/processes.js';
import { alternate, summarize, type CaseResult } from '../lib/measure.js';
import { wrk } from '../lib/wrk.js';
import {
  directApiserver,
  startFastUpstream,
  startGateway,
  startKubectlProxy,
  startMinimalProxy,
  startMinimalTlsRelay,
  startNginx,
  type Endpoint,
  type World,
} from '../lib/world.js';
import type { BenchOptions } from './options.js';

const PATH = '/api/v1/namespaces/os-alpha/configmaps/bench-small';

async function loadEach(scenario: string, targets: readonly Endpoint[], options: BenchOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const connections of options.concurrency) {
    const runs = await alternate(targets, options.runs, async (t) => {
      const cpuBefore = t.pid > 0 ? treeCpuSeconds(t.pid) : 0;
      const r = await wrk(`${t.base}${PATH}`, t.headers, { connections, seconds: options.seconds });
      if (r.errors > 0) throw new Error(`${scenario}: ${t.name} at c${connections}: ${r.errors} errors of ${r.requests} requests\n${r.report}`);
      // The target's own CPU per request (user + system, its worker processes included): steadier than req/s on a
      // shared machine, and what the target takes from the upstream on the same cores.
      const metrics: Record<string, number> = { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
      if (t.pid > 0) metrics.cpuUsPerReq = ((treeCpuSeconds(t.pid) - cpuBefore) * 1e6) / r.requests;
      return metrics;
    });
    for (const t of targets) results.push(summarize(scenario, `c${connections}`, t.name, runs.get(t.name) ?? []));
  }
  return results;
}

/** Scenario 1: one ConfigMap from the real apiserver, TLS on every hop a user has. */
export async function smallGetApiserver(world: World, options: BenchOptions): Promise<CaseResult[]> {
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bench-small', namespace: 'os-alpha' }, data: { key: 'value' } });
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
  const targets = [
    directApiserver(world),
    gateway,
    await startNginx(world, { url: world.env.kubeServer, bearer: world.gatewaySaToken }, true),
    await startKubectlProxy(world),
    await startMinimalTlsRelay(world),
  ];
  // Warm: the token cache, the tenancy check, every keep-alive pool.
  for (const t of targets) await wrk(`${t.base}${PATH}`, t.headers, { connections: 4, seconds: 1 });
  return loadEach('1 small GET, real apiserver', targets, options);
}

/** Scenario 2: the same against an upstream that costs nothing, plain HTTP everywhere: the proxies' own cost. */
export async function smallGetFastUpstream(world: World, options: BenchOptions): Promise<CaseResult[]> {
  const direct = await startFastUpstream(world);
  const port = Number(new URL(direct.base).port);
  const gateway = await startGateway(world, { upstream: { url: direct.base }, tls: false, tenancy: false });
  const targets = [direct, gateway, await startNginx(world, { url: direct.base }, false), await startMinimalProxy(world, port)];
  for (const t of targets) await wrk(`${t.base}${PATH}`, t.headers, { connections: 4, seconds: 1 });
  return loadEach('2 small GET, fast upstream', targets, options);
}
