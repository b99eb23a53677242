import https from 'node:https';
import { readFileSync } from 'node:fs';
import { Authenticator } from '../../src/auth/authenticator.js';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { ServiceTokenProvider } from '../../src/auth/service-token.js';
import { silentLogger } from '../../src/observability/logger.js';
import { sample } from '../../test/helpers/prometheus-text.js';
import { issueToken } from '../../test/e2e/support/keystone.js';
import { median, summarize, type CaseResult } from '../lib/measure.js';
import { request } from '../lib/http-client.js';
import { startGateway, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

const PATH = '/api/v1/namespaces/os-alpha/configmaps/bench-small';

/** Scenario 6: what authentication costs: a cache hit (in-process), a new token (one Keystone call), a burst of new tokens. */
export async function auth(world: World, options: BenchOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];

  // a) A cache hit, in-process: token hash, LRU lookup, expiry check; as the request path does it (identify, no
  //    promise) and as the other callers do (authenticate, awaited).
  const logger = silentLogger();
  const keystone = new KeystoneClient({ authUrl: world.env.keystoneUrl, timeoutMs: 5000 });
  const service = new ServiceTokenProvider(
    keystone,
    { username: 'gateway', password: world.env.passwords.gateway, userDomainName: 'Default', projectName: 'service', projectDomainName: 'Default' },
    logger,
  );
  const authenticator = new Authenticator(keystone, service, { cacheTtlMs: 300_000, cacheMaxEntries: 50_000, negativeCacheTtlMs: 10_000, negativeCacheMaxEntries: 10_000 }, logger);
  await authenticator.authenticate(world.token);
  const iterations = options.smoke ? 10_000 : 300_000;
  const microRuns: Array<Record<string, number>> = [];
  for (let round = 0; round < options.runs; round += 1) {
    let started = performance.now();
    for (let i = 0; i < iterations; i += 1) {
      if (authenticator.identify(world.token) instanceof Promise) throw new Error('the token should be cached');
    }
    const usPerHit = ((performance.now() - started) * 1000) / iterations;
    started = performance.now();
    for (let i = 0; i < iterations; i += 1) await authenticator.authenticate(world.token);
    microRuns.push({ usPerHit, usPerAwaitedHit: ((performance.now() - started) * 1000) / iterations });
  }
  keystone.close();
  results.push(summarize('6 auth', 'cache hit, in-process', 'gateway', microRuns));

  // b) Through the gateway: the first request of a new token against the next one.
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
  const ca = readFileSync(world.env.tlsCa);
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: Infinity });
  const get = (token: string) => request({ url: `${gateway.base}${PATH}`, agent, headers: { 'x-auth-token': token } }, undefined, https);
  await get(world.token);
  const firstMs: number[] = [];
  const cachedMs: number[] = [];
  for (let i = 0; i < (options.smoke ? 2 : 20); i += 1) {
    const token = (await issueToken('alice', 'alpha')).token;
    let t = performance.now();
    if ((await get(token)).status !== 200) throw new Error('new token refused');
    firstMs.push(performance.now() - t);
    t = performance.now();
    await get(token);
    cachedMs.push(performance.now() - t);
  }
  results.push(summarize('6 auth', 'request latency through the gateway', 'gateway', [{ newTokenMs: median(firstMs), cachedTokenMs: median(cachedMs) }]));

  // c) A burst: ten concurrent requests for each of N new tokens cost exactly N Keystone validations.
  const tokens: string[] = [];
  for (let i = 0; i < options.newTokens; i += 1) tokens.push((await issueToken('alice', 'alpha')).token);
  // Validations the gateway asked for, and how many of them it had to send twice (a Keystone worker that hung).
  const validations = async (): Promise<[number, number]> => {
    const text = (await request({ url: gateway.metricsUrl })).text;
    return [
      sample(text, 'zun_gateway_keystone_requests_total', { operation: 'validate_token' }),
      sample(text, 'zun_gateway_keystone_retries_total', { operation: 'validate_token' }),
    ];
  };
  const before = await validations();
  const started = performance.now();
  const statuses = await Promise.all(tokens.flatMap((t) => Array.from({ length: 10 }, () => get(t).then((r) => r.status))));
  const burstMs = performance.now() - started;
  const after = await validations();
  agent.destroy();
  const failed = statuses.filter((s) => s !== 200).length;
  if (failed > 0) throw new Error(`${failed} of ${statuses.length} burst requests failed`);
  results.push(summarize('6 auth', `${statuses.length} concurrent requests, ${tokens.length} new tokens`, 'gateway', [{ keystoneValidations: after[0] - before[0], keystoneRetries: after[1] - before[1], totalMs: burstMs }]));
  return results;
}
