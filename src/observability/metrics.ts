import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CounterTally, HotHistogram } from './hot-metrics.js';

/** Seconds; requests span from a cached-token proxy hop (sub-millisecond) to Keystone round trips and slow upstreams. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every Prometheus metric of the gateway, in one registry per gateway (tests run several side by side).
 * Label values are bounded sets (COE, method, status code, operation names), never user input: a client cannot make
 * the registry grow.
 */
export class Metrics {
  readonly registry = new Registry();

  /** Counted on the request path in `requestTally`, handed to prom-client at each scrape (hot-metrics.ts). */
  private readonly requestTally: CounterTally<'coe' | 'method' | 'code'> = new CounterTally(() => this.requests);

  readonly requests = new Counter({
    name: 'zun_gateway_requests_total',
    help: 'Requests answered per COE, method and status code (upgraded sessions count once, with their handshake status)',
    labelNames: ['coe', 'method', 'code'] as const,
    registers: [this.registry],
    collect: () => this.requestTally.flush(),
  });

  readonly requestDuration = new HotHistogram(
    'zun_gateway_request_duration_seconds',
    'Time from the request to the end of its response (long-lived watches and upgraded sessions excluded)',
    ['coe', 'method'],
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly upstreamLatency = new HotHistogram(
    'zun_gateway_upstream_latency_seconds',
    'Time from sending a request upstream to receiving its response head',
    ['coe'],
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly upstreamErrors = new Counter({
    name: 'zun_gateway_upstream_errors_total',
    help: 'Upstream requests that failed before a response (refused, reset, timed out, TLS)',
    labelNames: ['coe', 'code'] as const,
    registers: [this.registry],
  });

  readonly keystoneRequests = new Counter({
    name: 'zun_gateway_keystone_requests_total',
    help: 'Calls to Keystone per operation and outcome (HTTP status, or "error" when Keystone could not be reached)',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly keystoneLatency = new Histogram({
    name: 'zun_gateway_keystone_request_duration_seconds',
    help: 'Latency of Keystone calls per operation',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly keystoneErrors = new Counter({
    name: 'zun_gateway_keystone_errors_total',
    help: 'Keystone calls that failed: unreachable, timed out, or answered with a 5xx',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly keystoneRetries = new Counter({
    name: 'zun_gateway_keystone_retries_total',
    help: 'Keystone reads tried a second time: the first failed while Keystone kept answering other calls (a stuck worker or a broken connection)',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  /** Counted on the request path in `tokenLookupTally` (hot-metrics.ts); `tokenLookups` hands out its counters. */
  private readonly tokenLookupTally: CounterTally<'result'> = new CounterTally(() => this.tokenCache);

  private readonly tokenCache = new Counter({
    name: 'zun_gateway_token_cache_lookups_total',
    help: 'Token lookups: hit (valid, cached), negative_hit (refused, cached), miss (asked Keystone), shared (joined a lookup in flight), revalidate (a hit that also asked Keystone again in the background, keystone.revalidateSeconds)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => this.tokenLookupTally.flush(),
  });

  /** The token-cache lookup counter for one result (keep it). */
  tokenLookups(result: 'hit' | 'negative_hit' | 'miss' | 'shared' | 'revalidate'): { inc(): void } {
    return this.tokenLookupTally.child(result);
  }

  private tokenCacheSource: (() => { valid: number; refused: number }) | undefined;

  readonly tokenCacheSize = new Gauge({
    name: 'zun_gateway_token_cache_entries',
    help: 'Entries in the token caches now (valid: validated tokens; refused: the negative cache)',
    labelNames: ['cache'] as const,
    registers: [this.registry],
    collect: () => {
      const sizes = this.tokenCacheSource?.();
      if (sizes === undefined) return;
      this.tokenCacheSize.set({ cache: 'valid' }, sizes.valid);
      this.tokenCacheSize.set({ cache: 'refused' }, sizes.refused);
    },
  });

  readonly upgradedConnections = new Gauge({
    name: 'zun_gateway_upgraded_connections',
    help: 'Upgraded sessions open now (exec, attach, port-forward, docker hijack)',
    labelNames: ['coe'] as const,
    registers: [this.registry],
  });

  readonly watches = new Gauge({
    name: 'zun_gateway_open_watches',
    help: 'Long-lived streaming requests open now (Kubernetes watches, logs -f, docker events and logs --follow)',
    labelNames: ['coe'] as const,
    registers: [this.registry],
  });

  private readonly http2Sources = new Map<string, () => ReadonlyArray<{ readonly streams: number }>>();

  readonly upstreamHttp2 = new Gauge({
    name: 'zun_gateway_upstream_http2',
    help: 'Shared HTTP/2 connections to the upstream (kind="connections") and the watches and follows carried on them (kind="streams")',
    labelNames: ['coe', 'kind'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [coe, source] of this.http2Sources) {
        const connections = source();
        this.upstreamHttp2.set({ coe, kind: 'connections' }, connections.length);
        this.upstreamHttp2.set({ coe, kind: 'streams' }, connections.reduce((n, c) => n + c.streams, 0));
      }
    },
  });

  /** Reports a COE's shared HTTP/2 connections (`upstreamHttp2`) at every scrape. */
  observeHttp2(coe: string, connections: () => ReadonlyArray<{ readonly streams: number }>): void {
    this.http2Sources.set(coe, connections);
  }

  readonly revocationPolls = new Counter({
    name: 'zun_gateway_revocation_polls_total',
    help: "Polls of Keystone's revocation events by outcome (ok, error: Keystone unreachable or failing, forbidden: the gateway may not read them)",
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly revocationEvents = new Counter({
    name: 'zun_gateway_revocation_events_total',
    help: 'Revocation events read from Keystone (an event is read again by the polls within a minute of it)',
    registers: [this.registry],
  });

  readonly revokedTokens = new Counter({
    name: 'zun_gateway_revoked_tokens_total',
    help: 'Cached tokens dropped because a Keystone revocation event revoked them',
    registers: [this.registry],
  });

  readonly revocationLastSuccess = new Gauge({
    name: 'zun_gateway_revocation_last_success_timestamp_seconds',
    help: "When Keystone's revocation events were last read (alert when it falls behind: revoked tokens then work until the cache TTL)",
    registers: [this.registry],
  });

  readonly sessionsEnded = new Counter({
    name: 'zun_gateway_sessions_ended_total',
    help: 'Open sessions (exec, attach, port-forward, watches, follows) the gateway ended because their token expired or was revoked',
    labelNames: ['coe', 'reason'] as const,
    registers: [this.registry],
  });

  private openConnectionsSource: (() => number) | undefined;

  readonly openConnections = new Gauge({
    name: 'zun_gateway_open_connections',
    help: 'Client connections accepted and not yet closed, TLS handshakes and idle keep-alive connections included',
    registers: [this.registry],
    collect: () => {
      const source = this.openConnectionsSource;
      if (source !== undefined) this.openConnections.set(source());
    },
  });

  /** Reports the listener's open connections (`openConnections`) at every scrape. */
  observeOpenConnections(source: () => number): void {
    this.openConnectionsSource = source;
  }

  readonly rateLimited = new Counter({
    name: 'zun_gateway_rate_limited_total',
    help: 'Requests refused with 429 because their project spent its rate limit (k8s.rateLimit, docker.rateLimit)',
    labelNames: ['coe'] as const,
    registers: [this.registry],
  });

  readonly provisioning = new Counter({
    name: 'zun_gateway_provisioning_actions_total',
    help: 'Tenant provisioning actions per cluster, action and outcome',
    labelNames: ['action', 'outcome', 'cluster'] as const,
    registers: [this.registry],
  });

  /** Counted on the request path in `clusterRequestTally` (hot-metrics.ts). */
  private readonly clusterRequestTally: CounterTally<'coe' | 'cluster' | 'code'> = new CounterTally(() => this.clusterRequests);

  readonly clusterRequests = new Counter({
    name: 'zun_gateway_cluster_requests_total',
    help: 'Requests answered per upstream of a COE that has several (Kubernetes clusters, by their configured names) and status code; requests naming no configured cluster are not counted here',
    labelNames: ['coe', 'cluster', 'code'] as const,
    registers: [this.registry],
    collect: () => this.clusterRequestTally.flush(),
  });

  readonly clusterUpstreamLatency = new HotHistogram(
    'zun_gateway_cluster_upstream_latency_seconds',
    'Time from sending a request to a cluster to receiving its response head, per cluster',
    ['coe', 'cluster'],
    LATENCY_BUCKETS,
    this.registry,
  );

  // The per-request metrics keep a child per label combination (bounded: COE, the HTTP parser's methods, status
  // codes); their updates bypass prom-client's (hot-metrics.ts). These maps, keyed by one template string, stay in
  // front of `child()` (which joins a rest array of labels): 0.13 against 0.33 µs for the three updates of a request.
  private readonly requestCounters = new Map<string, { inc(): void }>();
  private readonly durationHistograms = new Map<string, { observe(v: number): void }>();
  private readonly upstreamHistograms = new Map<string, { observe(v: number): void }>();
  private readonly clusterCounters = new Map<string, { inc(): void }>();
  private readonly clusterHistograms = new Map<string, { observe(v: number): void }>();

  /** One answered request to a named upstream (`clusterRequests`). */
  countClusterRequest(coe: string, cluster: string, code: number): void {
    const key = `${coe} ${cluster} ${code}`;
    let child = this.clusterCounters.get(key);
    if (child === undefined) {
      child = this.clusterRequestTally.child(coe, cluster, String(code));
      this.clusterCounters.set(key, child);
    }
    child.inc();
  }

  /** A named upstream's time to its response head (`clusterUpstreamLatency`), in seconds. */
  observeClusterUpstream(coe: string, cluster: string, seconds: number): void {
    const key = `${coe} ${cluster}`;
    let child = this.clusterHistograms.get(key);
    if (child === undefined) {
      child = this.clusterUpstreamLatency.child(coe, cluster);
      this.clusterHistograms.set(key, child);
    }
    child.observe(seconds);
  }

  /** One answered request (`requests`). */
  countRequest(coe: string, method: string, code: number): void {
    const key = `${coe} ${method} ${code}`;
    let child = this.requestCounters.get(key);
    if (child === undefined) {
      child = this.requestTally.child(coe, method, String(code));
      this.requestCounters.set(key, child);
    }
    child.inc();
  }

  /** The duration of an ordinary request (`requestDuration`), in seconds. */
  observeDuration(coe: string, method: string, seconds: number): void {
    const key = `${coe} ${method}`;
    let child = this.durationHistograms.get(key);
    if (child === undefined) {
      child = this.requestDuration.child(coe, method);
      this.durationHistograms.set(key, child);
    }
    child.observe(seconds);
  }

  /** The upstream's time to its response head (`upstreamLatency`), in seconds. */
  observeUpstream(coe: string, seconds: number): void {
    let child = this.upstreamHistograms.get(coe);
    if (child === undefined) {
      child = this.upstreamLatency.child(coe);
      this.upstreamHistograms.set(coe, child);
    }
    child.observe(seconds);
  }

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'zun_gateway_' });
    // The counters operations.md says to alert on are exported at 0 from the start: a series that first appears
    // with the value 1 shows no increase to Prometheus (increase(), rate()), so the first failure would go unseen.
    for (const operation of ['issue_token', 'validate_token', 'ping', 'revocation_events']) this.keystoneErrors.inc({ operation }, 0);
    for (const outcome of ['error', 'forbidden']) this.revocationPolls.inc({ outcome }, 0);
    for (const operation of ['validate_token', 'ping']) this.keystoneRetries.inc({ operation }, 0);
  }

  /** A Kubernetes cluster is configured: its provisioning failures are exported at 0 from the start. */
  registerCluster(cluster: string): void {
    this.provisioning.inc({ action: 'provision', outcome: 'error', cluster }, 0);
  }

  /** A COE mount exists: its alerting counters are exported at 0 from the start (see the constructor). */
  registerCoe(coe: string): void {
    this.rateLimited.inc({ coe }, 0);
  }

  /** The token caches are owned by the Authenticator; their sizes are read at scrape time. */
  reportTokenCacheSize(source: () => { valid: number; refused: number }): void {
    this.tokenCacheSource = source;
  }

  /** The text a Prometheus scrape gets. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
