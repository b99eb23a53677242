import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterTally, HotHistogram } from '../../src/observability/hot-metrics.js';

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Observations spread over every bucket, exact bounds and values past the last one included. */
function observations(n: number): number[] {
  const out = [...BOUNDS, 0, 11, 1e6];
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push((x / 2 ** 31) ** 4 * 12);
  }
  return out;
}

describe('hot-path metrics (hot-metrics.ts): what a scrape shows is what prom-client would show', () => {
  it('a HotHistogram renders exactly as a prom-client Histogram given the same observations', async () => {
    const reference = new Registry();
    const histogram = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['coe', 'method'], buckets: BOUNDS, registers: [reference] });
    const hot = new Registry();
    const fast = new HotHistogram('h_seconds', 'help text', ['coe', 'method'], BOUNDS, hot);
    // In the order prom-client first sees each label set (its series are listed in that order).
    const children = [fast.child('docker', 'POST'), fast.child('k8s', 'GET')];
    observations(5000).forEach((v, i) => {
      const [coe, method] = i % 3 === 0 ? ['docker', 'POST'] : ['k8s', 'GET'];
      histogram.labels(coe as string, method as string).observe(v);
      children[i % 3 === 0 ? 0 : 1]?.observe(v);
    });
    assert.equal(await hot.metrics(), await reference.metrics());
  });

  it('a CounterTally hands its counts to its Counter at each scrape, nothing lost between scrapes', async () => {
    const registry = new Registry();
    const tally: CounterTally<'code'> = new CounterTally(() => counter);
    const counter = new Counter({ name: 'c_total', help: 'h', labelNames: ['code'], registers: [registry], collect: () => tally.flush() });
    const ok = tally.child('200');
    const denied = tally.child('401');
    for (let i = 0; i < 6; i++) ok.inc();
    tally.child('200').inc(); // asked again for the same labels: the same tally
    denied.inc();
    assert.match(await registry.metrics(), /c_total\{code="200"\} 7\nc_total\{code="401"\} 1/);
    ok.inc();
    assert.match(await registry.metrics(), /c_total\{code="200"\} 8\nc_total\{code="401"\} 1/);
  });

  it('a reset zeroes a HotHistogram, and the children handed out before keep counting', async () => {
    const registry = new Registry();
    const fast = new HotHistogram('r_seconds', 'h', ['coe'], BOUNDS, registry);
    const child = fast.child('k8s');
    child.observe(0.2);
    registry.resetMetrics();
    child.observe(3);
    const text = await registry.metrics();
    assert.match(text, /r_seconds_bucket\{le="0.25",coe="k8s"\} 0/);
    assert.match(text, /r_seconds_bucket\{le="5",coe="k8s"\} 1/);
    assert.match(text, /r_seconds_sum\{coe="k8s"\} 3\n/);
    assert.match(text, /r_seconds_count\{coe="k8s"\} 1/);
  });
});
