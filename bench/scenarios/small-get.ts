import { readFileSync } from 'node:fs';
import { apply } from '../lib/cluster.js';
import { timedGet } from '../lib/http-client.js';
import { machineTicks, treeCpuSeconds } from '../lib/processes.js';
import { alternate, summarize, type CaseResult } from '../lib/measure.js';
import { wrk } from '../lib/wrk.js';
import {
  apiserverPid,
  assertSameTenant,
  BEFORE_ENTRY,
  directApiserver,
  etcdPid,
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

/** One load case: its name in the table, wrk's connections and threads, the targets it alternates. */
interface LoadCase {
  readonly name: string;
  readonly connections: number;
  readonly threads?: number;
  readonly targets: readonly Endpoint[];
}

/** Processes whose CPU per request is reported beside each target's own (the apiserver's and etcd's share of the work). */
interface Upstreams {
  readonly apiserver?: number;
  readonly etcd?: number;
}

async function load(scenario: string, cases: readonly LoadCase[], options: BenchOptions, upstreams: Upstreams = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const runs = await alternate(c.targets, options.runs, async (t) => {
      const cpu = (pid: number | undefined): number => (pid !== undefined && pid > 0 ? treeCpuSeconds(pid) : Number.NaN);
      const before = { own: cpu(t.pid), apiserver: cpu(upstreams.apiserver), etcd: cpu(upstreams.etcd), machine: machineTicks() };
      const r = await wrk(`${t.base}${PATH}`, t.headers, { connections: c.connections, seconds: options.seconds, ...(c.threads !== undefined ? { threads: c.threads } : {}) });
      if (r.errors > 0) throw new Error(`${scenario}: ${t.name} at ${c.name}: ${r.errors} errors of ${r.requests} requests\n${r.report}`);
      const perRequest = (seconds: number): number => (seconds * 1e6) / r.requests;
      // The target's own CPU per request (user + system, its worker processes included): steadier than req/s on a
      // shared machine, and what the target takes from the upstream on the same cores. The apiserver's and etcd's
      // beside it: how much work the way a target asks (its protocol, its identity) makes upstream.
      const machine = machineTicks();
      // How much of the machine's CPU went unused in the round: with every core busy, the rate is the cores divided by
      // the work per request; with some idle, latency (a queue, a wait) holds the closed loop back.
      const idlePct = (100 * (machine.idle - before.machine.idle)) / Math.max(1, machine.total - before.machine.total);
      const metrics: Record<string, number> = { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, idlePct };
      if (t.pid > 0) metrics.cpuUsPerReq = perRequest(cpu(t.pid) - before.own);
      if (upstreams.apiserver !== undefined && upstreams.apiserver > 0) metrics.apiserverUsPerReq = perRequest(cpu(upstreams.apiserver) - before.apiserver);
      if (upstreams.etcd !== undefined && upstreams.etcd > 0) metrics.etcdUsPerReq = perRequest(cpu(upstreams.etcd) - before.etcd);
      return metrics;
    });
    for (const t of c.targets) results.push(summarize(scenario, c.name, t.name, runs.get(t.name) ?? []));
  }
  return results;
}

/**
 * Warm every target before its first measured round (the token cache, the tenancy check, the pools, the JIT), once
 * it answers 200: on a busy machine a gateway's first Keystone validation can time out, and its 503 is not a result.
 */
async function warm(world: World, targets: readonly Endpoint[], options: BenchOptions): Promise<void> {
  for (const t of targets) {
    await answers200(world, t, PATH);
    await wrk(`${t.base}${PATH}`, t.headers, { connections: 16, seconds: options.smoke ? 1 : 3 });
  }
}

/** Asks `target` for `path` until it answers 200 (ten tries, two seconds apart). */
async function answers200(world: World, target: Endpoint, path: string): Promise<void> {
  const ca = [readFileSync(world.env.kubeCa), readFileSync(world.env.tlsCa)];
  for (let attempt = 1; ; attempt += 1) {
    const { status } = await timedGet(`${target.base}${path}`, target.headers, ca);
    if (status === 200) return;
    if (attempt === 10) throw new Error(`${target.name} answered ${status} ten times in a row for ${path}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Scenario 1: one ConfigMap from the real apiserver, TLS on every hop a user has. Two comparisons:
 *  - every target acts as the same tenant (c1, c16, c64): the gateway as users run it (extras on, the default),
 *    kubectl proxy with the same user, groups and extras, nginx and the minimal relay with the same headers from the
 *    client; at c16 also the gateway with `impersonation.extras: false` against kubectl proxy with `--as`/`--as-group`
 *    and direct without extras (what the extras cost the apiserver);
 *  - the independent measurement of issue 30 (wrk -t1 -c16, 3 s warm-up, direct as the cluster admin without
 *    impersonation): the gateway with extras on and off, kubectl proxy with the gateway's kubeconfig and `--as`/`--as-group`.
 * Both at c16 also with the gateway on a plain-HTTP listener (kubectl proxy has no other: the like-for-like pair), and
 * as the tenant the gateway with `k8s.http2Requests: true` (its ordinary requests on shared HTTP/2 connections).
 * Beside each target's own CPU per request, the apiserver's and etcd's during its rounds.
 */
export async function smallGetApiserver(world: World, options: BenchOptions): Promise<CaseResult[]> {
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
  // The project's namespace is the gateway's to make on first use (on a fresh environment nobody has asked yet).
  await answers200(world, gateway, '/api/v1/namespaces/os-alpha/configmaps?limit=1');
  await assertSameTenant(world, gateway);
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bench-small', namespace: 'os-alpha' }, data: { key: 'value' } });
  const gatewayNoExtras = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true, extras: false, name: 'gateway, no extras' });
  // Ordinary requests on the shared HTTP/2 connections (k8s.http2Requests, off by default): what the protocol changes.
  const gatewayH2 = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true, k8s: ['http2Requests: true'], name: 'gateway, HTTP/2 requests' });
  // kubectl proxy speaks plain HTTP to its clients: the gateway with a plain listener is the like-for-like pair.
  const gatewayPlain = await startGateway(world, { upstream: 'apiserver', tls: false, tenancy: true, name: 'gateway, plain HTTP' });
  const gatewayPlainNoExtras = await startGateway(world, { upstream: 'apiserver', tls: false, tenancy: true, extras: false, name: 'gateway, plain HTTP, no extras' });
  const kubectlProxy = await startKubectlProxy(world);
  const kubectlProxyAs = await startKubectlProxy(world, { extras: false, name: 'kubectl proxy, --as' });
  const direct = directApiserver(world);
  const tenantTargets = [direct, gateway, await startNginx(world, { url: world.env.kubeServer, bearer: world.gatewaySaToken }, true), kubectlProxy, await startMinimalTlsRelay(world)];
  const directNoExtras = { ...directApiserver(world, 'tenant without extras'), name: 'direct, no extras' };
  const before = BEFORE_ENTRY === undefined ? [] : [await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true, entry: BEFORE_ENTRY, name: 'gateway, before' })];
  const pairs = [gatewayPlain, gatewayNoExtras, gatewayPlainNoExtras, kubectlProxyAs, directNoExtras, gatewayH2, ...before];
  const asAdmin = [directApiserver(world, 'admin'), gateway, gatewayPlain, gatewayNoExtras, gatewayPlainNoExtras, kubectlProxyAs, ...before];
  await warm(world, [...tenantTargets, ...pairs, asAdmin[0] as Endpoint], options);
  const upstreams = { apiserver: apiserverPid(world), etcd: etcdPid(world) };
  return load(
    '1 small GET, real apiserver',
    [
      ...options.concurrency.map((n) => ({ name: `c${n}`, connections: n, targets: n === 16 ? [...tenantTargets, ...pairs] : tenantTargets })),
      { name: 'c16 -t1, direct as the cluster admin', connections: 16, threads: 1, targets: asAdmin },
    ],
    options,
    upstreams,
  );
}

/** Scenario 2: the same against an upstream that costs nothing, plain HTTP everywhere: the proxies' own cost. */
export async function smallGetFastUpstream(world: World, options: BenchOptions): Promise<CaseResult[]> {
  const direct = await startFastUpstream(world);
  const port = Number(new URL(direct.base).port);
  const gateway = await startGateway(world, { upstream: { url: direct.base }, tls: false, tenancy: false });
  const before = BEFORE_ENTRY === undefined ? [] : [await startGateway(world, { upstream: { url: direct.base }, tls: false, tenancy: false, entry: BEFORE_ENTRY, name: 'gateway, before' })];
  const targets = [direct, gateway, await startNginx(world, { url: direct.base }, false), await startMinimalProxy(world, port), ...before];
  for (const t of targets) await wrk(`${t.base}${PATH}`, t.headers, { connections: 4, seconds: 1 });
  return load(
    '2 small GET, fast upstream',
    options.concurrency.map((n) => ({ name: `c${n}`, connections: n, targets })),
    options,
  );
}
