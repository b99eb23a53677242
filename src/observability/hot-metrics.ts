import type { Counter, Metric, Registry } from 'prom-client';

/*
 * Metrics updated on every request, kept out of prom-client's update path. prom-client's labelled child still checks
 * and hashes its labels on every inc/observe, and a histogram turns each bucket bound into a property name twice per
 * observation: together about 4 µs of a proxied request in the running gateway, a third of everything the gateway
 * adds to a request (docs/performance.md, step 9). Here an update is an array index and an addition; prom-client
 * still renders the exposition, reading these at each scrape.
 */

/**
 * Counts for a prom-client Counter, kept per label set and handed to it at each scrape: make the Counter with
 * `collect: () => tally.flush()`.
 */
export class CounterTally<L extends string> {
  private readonly tallies = new Map<string, { readonly labels: readonly string[]; pending: number }>();

  constructor(private readonly counter: () => Counter<L>) {}

  /** The counter for one set of label values; asked again for the same values, it counts into the same tally. */
  child(...labels: string[]): { inc(): void } {
    const key = labels.join('\u0000');
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { labels, pending: 0 };
      this.tallies.set(key, tally);
    }
    const target = tally;
    return {
      inc: () => {
        target.pending += 1;
      },
    };
  }

  /** Hands what was counted since the last scrape to prom-client. */
  flush(): void {
    const counter = this.counter();
    for (const tally of this.tallies.values()) {
      if (tally.pending === 0) continue;
      counter.labels(...tally.labels).inc(tally.pending);
      tally.pending = 0;
    }
  }
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram with a fixed set of label names, registered in a prom-client Registry and rendered by it
 * (it implements the part of prom-client's metric interface a registry reads: name, help, type, get, reset).
 */
export class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The histogram for one set of label values, in labelNames order; asked again, it observes into the same series. */
  child(...labels: string[]): { observe(value: number): void } {
    const key = labels.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      series = {
        labels: Object.fromEntries(this.labelNames.map((name, i) => [name, labels[i] ?? ''])),
        counts: new Float64Array(this.bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    const { bounds } = this;
    const target = series;
    return {
      observe: (value: number) => {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > (bounds[i] as number)) i += 1;
        target.counts[i] = (target.counts[i] as number) + 1;
        target.sum += value;
        target.count += 1;
      },
    };
  }

  /** What prom-client's registry renders: cumulative buckets with `le`, then `_sum` and `_count`, per label set. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> } {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const series of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, ...series.labels }, value: cumulative });
      });
      values.push(
        { metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...series.labels }, value: series.count },
        { metricName: `${this.name}_sum`, labels: { ...series.labels }, value: series.sum },
        { metricName: `${this.name}_count`, labels: { ...series.labels }, value: series.count },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Zeroes every series (children already handed out keep counting into theirs). */
  reset(): void {
    for (const series of this.series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
