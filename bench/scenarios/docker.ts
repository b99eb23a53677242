import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { alternate, median, percentile, summarize, type CaseResult } from '../lib/measure.js';
import { closedLoop, request } from '../lib/http-client.js';
import { startGateway, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

interface DockerTarget {
  readonly name: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
  close(): void;
}

/** Scenario 7: Docker Engine API calls through the gateway against the engine's own socket. */
export async function docker(world: World, options: BenchOptions): Promise<CaseResult[]> {
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: false });
  const base = gateway.base.replace(/\/k8s$/, '/docker/v1.41');
  const tlsAgent = new https.Agent({ keepAlive: true, ca: readFileSync(world.env.tlsCa), maxSockets: 64 });
  const unixAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const json = (body: unknown) => (body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(JSON.stringify(body))) });
  const targets: DockerTarget[] = [
    {
      name: 'direct',
      call: (method, path, body) =>
        request({ socketPath: world.env.dockerSocket, path: `/v1.41${path}`, method, agent: unixAgent, headers: json(body) }, body === undefined ? undefined : JSON.stringify(body)),
      close: () => unixAgent.destroy(),
    },
    {
      name: 'gateway',
      call: (method, path, body) =>
        request({ url: `${base}${path}`, method, agent: tlsAgent, headers: { 'x-auth-token': world.token, ...json(body) } }, body === undefined ? undefined : JSON.stringify(body), https),
      close: () => tlsAgent.destroy(),
    },
  ];
  const results: CaseResult[] = [];
  const concurrency = options.smoke ? 4 : 16;
  const list = await alternate(targets, options.runs, async (t) => {
    const r = await closedLoop(async () => (await t.call('GET', '/containers/json')).status, concurrency, options.seconds);
    if (r.errors > 0) throw new Error(`docker ps through ${t.name}: ${r.errors} errors`);
    return { rps: r.rps, p50Ms: percentile(r.latencies, 50), p99Ms: percentile(r.latencies, 99) };
  });
  for (const t of targets) results.push(summarize('7 docker', `GET /containers/json, c${concurrency}`, t.name, list.get(t.name) ?? []));

  const creates = await alternate(targets, options.runs, async (t) => {
    const latencies: number[] = [];
    for (let i = 0; i < (options.smoke ? 2 : 10); i += 1) {
      const started = performance.now();
      const created = await t.call('POST', '/containers/create', { Image: world.env.busyboxImage, Cmd: ['true'] });
      latencies.push(performance.now() - started);
      if (created.status !== 201) throw new Error(`container create through ${t.name}: HTTP ${created.status} ${created.text}`);
      const id = (JSON.parse(created.text) as { Id: string }).Id;
      await t.call('DELETE', `/containers/${id}?force=1`);
    }
    return { createMs: median(latencies) };
  });
  for (const t of targets) results.push(summarize('7 docker', 'POST /containers/create', t.name, creates.get(t.name) ?? []));
  for (const t of targets) t.close();
  return results;
}
