import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { adminRequest, apply, tenantNamespace } from '../lib/cluster.js';
import { headerObject, request } from '../lib/http-client.js';
import { percentile, summarize, type CaseResult } from '../lib/measure.js';
import { rssBytes } from '../lib/processes.js';
import { directApiserver, startGateway, stopService, type Endpoint, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

const NAMESPACE = 'bench-watch';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface OpenWatch {
  readonly req: http.ClientRequest;
  /** When the watch saw the event carrying `marker`. */
  receivedAt?: number;
}

/** Watches whose connection and TLS handshake are under way at once (a burst of 2,000 overflows accept queues). */
const OPENING_AT_ONCE = 100;

/**
 * Opens `n` watches on the namespace's ConfigMaps from `resourceVersion`, each on its own connection, at most
 * OPENING_AT_ONCE of them being established at any moment.
 */
async function openWatches(target: Endpoint, n: number, resourceVersion: string, ca: Buffer, marker: () => string): Promise<OpenWatch[]> {
  const url = new URL(`${target.base}/api/v1/namespaces/${NAMESPACE}/configmaps?watch=1&resourceVersion=${resourceVersion}&timeoutSeconds=600`);
  const transport = url.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: false, maxSockets: Infinity, ...(url.protocol === 'https:' ? { ca } : {}) });
  const watches: OpenWatch[] = [];
  const openOne = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w: OpenWatch = {
        req: transport.get(url, { agent, headers: headerObject(target.headers) }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`watch through ${target.name}: HTTP ${res.statusCode}`));
          resolve();
          let text = '';
          res.on('data', (c: Buffer) => {
            if (w.receivedAt !== undefined) return;
            text += c.toString('utf8');
            if (text.includes(marker())) w.receivedAt = performance.now();
          });
          res.on('error', () => undefined);
        }),
      };
      w.req.on('error', (err) => reject(err));
      watches.push(w);
    });
  let next = 0;
  const opener = async (): Promise<void> => {
    while (next < n) {
      next += 1;
      await openOne();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, n) }, opener));
  } catch (err) {
    for (const w of watches) w.req.destroy();
    throw new Error(`opening ${n} watches through ${target.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return watches;
}

/**
 * Scenario 4: many concurrent watches through one gateway: its memory per watch, and how much later than direct an
 * event reaches all of them.
 */
export async function watches(world: World, options: BenchOptions): Promise<CaseResult[]> {
  await tenantNamespace(NAMESPACE, world.projectId);
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bench-watched', namespace: NAMESPACE }, data: { marker: 'start' } });
  const results: CaseResult[] = [];
  for (const name of ['direct', 'gateway'] as const) {
    const runs: Array<Record<string, number>> = [];
    for (let round = 0; round < options.runs; round += 1) {
      // A fresh gateway each round: the memory a process has freed stays mapped, so a second round on the same
      // gateway would measure reuse, not what 2,000 watches cost.
      const gateway = name === 'gateway' ? await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true }) : undefined;
      const target = gateway ?? directApiserver(world);
      const ca = readFileSync(gateway !== undefined ? world.env.tlsCa : world.env.kubeCa);
      try {
        runs.push(await measureRound(target, gateway, ca, options.watches, round));
      } finally {
        if (gateway !== undefined) await stopService(world, gateway.pid);
      }
      await sleep(1000);
    }
    results.push(summarize('4 watches', `${options.watches} watches`, name, runs));
  }
  return results;
}

/** One round: open the watches, change the ConfigMap once, time its arrival at each; the gateway's memory growth. */
async function measureRound(target: Endpoint, gateway: (Endpoint & { metricsUrl: string }) | undefined, ca: Buffer, n: number, round: number): Promise<Record<string, number>> {
  let marker = `m-${Date.now()}-${round}`;
  const rv = await currentResourceVersion();
  if (gateway !== undefined) {
    // Warm: the first request loads the code paths and opens the pool, which is not what a watch costs.
    const warm = await request({ url: `${gateway.base}/api/v1/namespaces/${NAMESPACE}/configmaps`, headers: headerObject(gateway.headers), ca } as https.RequestOptions & { url: string }, undefined, https);
    if (warm.status !== 200) throw new Error(`listing through the gateway: HTTP ${warm.status}`);
  }
  const rssBefore = gateway !== undefined ? rssBytes(gateway.pid) : 0;
  const memoryBefore = gateway !== undefined ? await processMemory(gateway.metricsUrl) : undefined;
  const open = await openWatches(target, n, rv, ca, () => marker);
  await sleep(1000);
  const rssAfter = gateway !== undefined ? rssBytes(gateway.pid) : 0;
  const memoryAfter = gateway !== undefined ? await processMemory(gateway.metricsUrl) : undefined;
  marker = `m-${Date.now()}-${round}-event`;
  const sent = performance.now();
  const patched = await adminRequest('PATCH', `/api/v1/namespaces/${NAMESPACE}/configmaps/bench-watched`, { data: { marker } });
  if (patched.status !== 200) throw new Error(`patching the watched ConfigMap: HTTP ${patched.status}`);
  const deadline = Date.now() + 30_000;
  while (open.some((w) => w.receivedAt === undefined) && Date.now() < deadline) await sleep(20);
  const latencies = open.map((w) => (w.receivedAt ?? Number.NaN) - sent);
  const missed = latencies.filter((l) => Number.isNaN(l)).length;
  for (const w of open) w.req.destroy();
  if (missed > 0) throw new Error(`${missed} of ${n} watches through ${target.name} never saw the event`);
  return {
    eventP50Ms: percentile(latencies, 50),
    eventP99Ms: percentile(latencies, 99),
    ...(gateway !== undefined ? { rssPerWatchKb: (rssAfter - rssBefore) / 1024 / n } : {}),
    ...(memoryBefore !== undefined && memoryAfter !== undefined
      ? {
          heapPerWatchKb: (memoryAfter.heap - memoryBefore.heap) / 1024 / n,
          externalPerWatchKb: (memoryAfter.external - memoryBefore.external) / 1024 / n,
        }
      : {}),
  };
}

async function currentResourceVersion(): Promise<string> {
  const list = await adminRequest('GET', `/api/v1/namespaces/${NAMESPACE}/configmaps`);
  return (list.json as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
}

/** The gateway's V8 heap in use and its memory outside the heap (Buffers, TLS state), from its own metrics. */
async function processMemory(metricsUrl: string): Promise<{ heap: number; external: number }> {
  const text = (await request({ url: metricsUrl })).text;
  const value = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (line === undefined) throw new Error(`the gateway's metrics lack ${name}`);
    return Number(line.split(' ')[1]);
  };
  return { heap: value('zun_gateway_nodejs_heap_size_used_bytes'), external: value('zun_gateway_nodejs_external_memory_bytes') };
}
