import { readFileSync } from 'node:fs';
import { adminKubectl } from '../../test/e2e/support/kubectl.js';
import { tenantNamespace } from '../lib/cluster.js';
import { timedGet } from '../lib/http-client.js';
import { alternate, summarize, type CaseResult } from '../lib/measure.js';
import { rssBytes, rssSampler } from '../lib/processes.js';
import { directApiserver, startGateway, startKubectlProxy, startMinimalTlsRelay, startNginx, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

const NAMESPACE = 'bench-list';
const PAYLOAD = 'x'.repeat(1900);
const LIST_ROUNDS_PER_RUN = 5;

/** Makes the namespace hold `items` ConfigMaps of about 2 KB (created once; later runs reuse them). */
async function ensureItems(items: number, projectId: string): Promise<void> {
  await tenantNamespace(NAMESPACE, projectId);
  const have = (await adminKubectl(['get', 'configmaps', '-n', NAMESPACE, '-o', 'name'])).stdout.split('\n').filter((l) => l.startsWith('configmap/bench-')).length;
  if (have >= items) return;
  for (let start = 0; start < items; start += 500) {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: Math.min(500, items - start) }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `bench-${start + i}`, namespace: NAMESPACE },
        data: { payload: PAYLOAD },
      })),
    };
    // Items that exist already make kubectl create report errors; the rest are created.
    await adminKubectl(['create', '-f', '-'], JSON.stringify(list));
  }
}

/** Scenario 3: a LIST of ~10 MB: time to first byte, total time, and how much the gateway's memory grows meanwhile. */
export async function largeList(world: World, options: BenchOptions): Promise<CaseResult[]> {
  await ensureItems(options.listItems, world.projectId);
  const ca = readFileSync(world.env.tlsCa);
  const kubeCa = readFileSync(world.env.kubeCa);
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
  const targets = [
    { ...directApiserver(world), ca: kubeCa },
    { ...gateway, ca },
    { ...(await startNginx(world, { url: world.env.kubeServer, bearer: world.gatewaySaToken }, true)), ca },
    { ...(await startKubectlProxy(world)), ca: undefined },
    { ...(await startMinimalTlsRelay(world)), ca },
  ];
  const path = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
  for (const t of targets) await timedGet(`${t.base}${path}`, t.headers, t.ca);
  // One LIST takes well under a second while the apiserver's own time to the first byte moves by a third from one
  // round to the next: five times the rounds of the other scenarios, for medians worth comparing.
  const runs = await alternate(targets, options.runs * LIST_ROUNDS_PER_RUN, async (t) => {
    const before = t.name === 'gateway' ? rssBytes(t.pid) : 0;
    const sampler = t.name === 'gateway' ? rssSampler(t.pid, 5) : undefined;
    const r = await timedGet(`${t.base}${path}`, t.headers, t.ca);
    const peak = sampler?.stop() ?? 0;
    if (r.status !== 200) throw new Error(`large LIST through ${t.name}: HTTP ${r.status}`);
    return { ttfbMs: r.ttfbMs, totalMs: r.totalMs, mb: r.bytes / 1e6, ...(t.name === 'gateway' ? { rssGrowthMb: (peak - before) / 1e6 } : {}) };
  });
  return targets.map((t) => summarize('3 large LIST', `${options.listItems} ConfigMaps`, t.name, runs.get(t.name) ?? []));
}
