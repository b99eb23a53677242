import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { adminRequest, apply, tenantNamespace } from '../lib/cluster.js';
import { headerObject, request } from '../lib/http-client.js';
import { alternate, percentile, summarize, type CaseResult } from '../lib/measure.js';
import { treeRssBytes } from '../lib/processes.js';
import { directApiserver, startGateway, startKubectlProxy, startMinimalTlsRelay, startNginx, stopService, type Endpoint, type World } from '../lib/world.js';
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
async function openWatches(target: Endpoint, n: number, resourceVersion: string, ca: Buffer | undefined, marker: () => string): Promise<OpenWatch[]> {
  const url = new URL(`${target.base}/api/v1/namespaces/${NAMESPACE}/configmaps?watch=1&resourceVersion=${resourceVersion}&timeoutSeconds=600`);
  const transport = url.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: false, maxSockets: Infinity, ...(url.protocol === 'https:' && ca !== undefined ? { ca } : {}) });
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

type WatchTarget = 'direct' | 'gateway' | 'gateway, two processes' | 'nginx' | 'kubectl proxy' | 'node:https relay';
const TARGETS: readonly WatchTarget[] = ['direct', 'gateway', 'gateway, two processes', 'nginx', 'kubectl proxy', 'node:https relay'];

/**
 * A target started for one round (fresh processes, so their memory growth is what the watches cost), and its CA.
 * `gateway, two processes` is the fan-out beyond one core: two gateways (replicas, as a Deployment or node:cluster
 * would run them), each holding half the watches.
 */
async function startTarget(world: World, name: WatchTarget): Promise<{ targets: Endpoint[]; ca: Buffer | undefined; metricsUrl?: string; started: boolean }> {
  switch (name) {
    case 'direct':
      return { targets: [directApiserver(world)], ca: readFileSync(world.env.kubeCa), started: false };
    case 'gateway': {
      const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
      return { targets: [gateway], ca: readFileSync(world.env.tlsCa), metricsUrl: gateway.metricsUrl, started: true };
    }
    case 'gateway, two processes': {
      const two = [await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true }), await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true })];
      return { targets: two, ca: readFileSync(world.env.tlsCa), started: true };
    }
    case 'nginx':
      return { targets: [await startNginx(world, { url: world.env.kubeServer, bearer: world.gatewaySaToken }, true)], ca: readFileSync(world.env.tlsCa), started: true };
    case 'kubectl proxy':
      return { targets: [await startKubectlProxy(world)], ca: undefined, started: true };
    case 'node:https relay':
      return { targets: [await startMinimalTlsRelay(world)], ca: readFileSync(world.env.tlsCa), started: true };
  }
}

/**
 * Scenario 4: many concurrent watches: how much later than direct an event reaches all of them through the gateway
 * and through the peers (nginx with TLS both ways, one upstream connection per watch; kubectl proxy, plain HTTP to
 * its clients and HTTP/2 to the apiserver; the minimal node:https relay, the floor of a Node.js proxy; two gateway
 * processes sharing the watches, the fan-out beyond one core), and each proxy's memory per watch. Targets alternate
 * round by round.
 */
export async function watches(world: World, options: BenchOptions): Promise<CaseResult[]> {
  await tenantNamespace(NAMESPACE, world.projectId);
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bench-watched', namespace: NAMESPACE }, data: { marker: 'start' } });
  const runs = await alternate(
    TARGETS.map((name) => ({ name })),
    options.runs,
    async ({ name }) => {
      // A fresh proxy each round: the memory a process has freed stays mapped, so a second round on the same
      // process would measure reuse, not what the watches cost.
      const { targets, ca, metricsUrl, started } = await startTarget(world, name);
      try {
        return await measureRound(targets, started, metricsUrl, ca, options.watches);
      } finally {
        if (started) for (const t of targets) await stopService(world, t.pid);
        await sleep(1000);
      }
    },
  );
  return TARGETS.map((name) => summarize('4 watches', `${options.watches} watches`, name, runs.get(name) ?? []));
}

/**
 * One round: open the watches (shared out among `targets`), change the ConfigMap once, time its arrival at each; the
 * proxies' memory growth (when `started`: their whole process trees), and for one gateway its heap and external
 * memory from its metrics.
 */
async function measureRound(targets: readonly Endpoint[], started: boolean, metricsUrl: string | undefined, ca: Buffer | undefined, n: number): Promise<Record<string, number>> {
  let marker = `m-${randomUUID()}`;
  const rv = await currentResourceVersion();
  if (started) {
    // Warm: the first request loads the code paths and opens the pool, which is not what a watch costs.
    for (const target of targets) {
      const warm = await request({ url: `${target.base}/api/v1/namespaces/${NAMESPACE}/configmaps`, headers: headerObject(target.headers), ...(ca !== undefined ? { ca } : {}) }, undefined, target.base.startsWith('https:') ? https : http);
      if (warm.status !== 200) throw new Error(`listing through ${target.name}: HTTP ${warm.status}`);
    }
  }
  const rss = (): number => (started ? targets.reduce((sum, t) => sum + treeRssBytes(t.pid), 0) : 0);
  const rssBefore = rss();
  const memoryBefore = metricsUrl !== undefined ? await processMemory(metricsUrl) : undefined;
  const open = (await Promise.all(targets.map((target, i) => openWatches(target, Math.floor(n / targets.length) + (i < n % targets.length ? 1 : 0), rv, ca, () => marker)))).flat();
  await sleep(1000);
  const rssAfter = rss();
  const memoryAfter = metricsUrl !== undefined ? await processMemory(metricsUrl) : undefined;
  marker = `m-${randomUUID()}-event`;
  const sent = performance.now();
  const patched = await adminRequest('PATCH', `/api/v1/namespaces/${NAMESPACE}/configmaps/bench-watched`, { data: { marker } });
  if (patched.status !== 200) throw new Error(`patching the watched ConfigMap: HTTP ${patched.status}`);
  const deadline = Date.now() + 30_000;
  while (open.some((w) => w.receivedAt === undefined) && Date.now() < deadline) await sleep(20);
  const latencies = open.map((w) => (w.receivedAt ?? Number.NaN) - sent);
  const missed = latencies.filter((l) => Number.isNaN(l)).length;
  for (const w of open) w.req.destroy();
  if (missed > 0) throw new Error(`${missed} of ${n} watches through ${targets.map((t) => t.name).join(' and ')} never saw the event`);
  return {
    eventP50Ms: percentile(latencies, 50),
    eventP99Ms: percentile(latencies, 99),
    ...(started ? { rssPerWatchKb: (rssAfter - rssBefore) / 1024 / n } : {}),
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
