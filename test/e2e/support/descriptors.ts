import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import { sample } from '../../helpers/prometheus-text.js';

/** How many file descriptors a process holds (sockets, pipes, files): the measure of a leak. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Waits up to 20 s for the process's descriptors to come back to `baseline` (within 2: a metrics scrape or a
 * log rotation may hold one), and fails naming how many are left over after `what`.
 */
export async function assertDescriptorsBack(pid: number, baseline: number, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let now = openFds(pid);
  while (now > baseline + 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    now = openFds(pid);
  }
  assert.ok(now <= baseline + 2, `the gateway holds ${now} descriptors, ${now - baseline} more than before ${what}`);
}

/** A metrics scrape on a connection of its own (a kept-alive one would count as one of the gateway's descriptors). */
export function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

/**
 * Waits up to 10 s for the gateway to count no open watch and no upgraded connection for `coe` (it counts one closed
 * once it has seen its client go), and fails listing the gauges.
 */
export async function assertNothingCountedOpen(metricsUrl: string, coe: string): Promise<void> {
  let metrics = await scrape(metricsUrl);
  const open = (): number => sample(metrics, 'zun_gateway_open_watches', { coe }) + sample(metrics, 'zun_gateway_upgraded_connections', { coe });
  for (let i = 0; i < 40 && open() > 0; i += 1) {
    await new Promise((r) => setTimeout(r, 250));
    metrics = await scrape(metricsUrl);
  }
  const lines = metrics
    .split('\n')
    .filter((l) => /^zun_gateway_(open_watches|upgraded_connections|upstream_http2)\{/.test(l))
    .join('; ');
  assert.equal(open(), 0, `still counted open: ${lines}`);
  assert.equal(sample(metrics, 'zun_gateway_upstream_http2', { coe, kind: 'streams' }), 0, `upstream streams left open: ${lines}`);
}
