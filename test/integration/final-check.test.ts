import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationCredentialExchange } from '../../src/auth/application-credentials.js';
import { Authenticator, authenticatorOptions } from '../../src/auth/authenticator.js';
import { Callers } from '../../src/auth/caller.js';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { ServiceTokenProvider } from '../../src/auth/service-token.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { engineUpstream } from '../../src/docker/engine.js';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { loadK8sClusters } from '../../src/k8s/clusters.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { dockerSteps } from '../../src/routes/docker.js';
import { k8sSteps } from '../../src/routes/k8s.js';
import type { CoeMount } from '../../src/routes/mount.js';
import { parseRequestTarget } from '../../src/routes/path.js';
import { mountOf, type PipelineContext } from '../../src/routes/pipeline.js';
import { Sessions } from '../../src/routes/sessions.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { LineCollector, MemoryAudit } from '../helpers/memory-audit.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

/** A listener that hands everything to one mount, as the gateway's dispatcher does. */
async function serve(mount: CoeMount): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => mount.handleRequest(req, res, parseRequestTarget(req.url ?? '/')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

async function get(url: string, token: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers: { 'x-auth-token': token } });
  return { status: res.status, body: await res.text() };
}

/**
 * The final check (routes/pipeline.ts step 7): whatever the header step builds, a request that breaks an invariant
 * is answered 500 with the reason in the log, and never reaches the upstream. The header steps are broken here on
 * purpose, as a bug in them would.
 */
describe('the final check of what leaves, with the header step broken on purpose', () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let engine: FakeDockerEngine;
  let dir: string;
  let config: GatewayConfig;
  let context: PipelineContext;
  let logs: LineCollector;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    upstream = await new RecordingUpstream().start();
    engine = await new FakeDockerEngine().start();
    engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-check-'));
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'up', cluster: { server: upstream.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'gw', user: { token: 'gateway-sa-token' } }],
      contexts: [{ name: 'up', context: { cluster: 'up', user: 'gw' } }],
      'current-context': 'up',
    }));
    config = parseConfig(
      [
        'keystone:',
        `  authUrl: ${keystone.url}`,
        '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
        `k8s: {kubeconfig: ${kubeconfig}}`,
        `docker: {host: "unix://${engine.socketPath}"}`,
      ].join('\n'),
      {},
    );
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 2000 });
    const logger = createLogger('debug', (logs = new LineCollector()));
    const authenticator = new Authenticator(client, new ServiceTokenProvider(client, config.keystone.serviceCredentials, logger), authenticatorOptions(config.keystone), logger);
    context = { callers: new Callers(authenticator, new ApplicationCredentialExchange(client, logger)), sessions: new Sessions(), logger, audit: new MemoryAudit(), metrics: new Metrics({ processMetrics: false }) };
  });

  after(async () => {
    await engine.stop();
    await upstream.stop();
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const k8sWith = async (extra: readonly string[]): Promise<{ url: string; close(): Promise<void> }> => {
    const k8s = config.k8s as NonNullable<GatewayConfig['k8s']>;
    const clusters = await loadK8sClusters(k8s, { impersonation: k8s.impersonation, logger: silentLogger() });
    const steps = k8sSteps({ clusters, impersonation: k8s.impersonation, authUrl: config.keystone.authUrl });
    return serve(mountOf({ ...steps, headers: (call, plan) => [...steps.headers(call, plan), ...extra] }, context));
  };

  const refusedLines: Array<[string, readonly string[], RegExp]> = [
    ['a second Impersonate-User', ['Impersonate-User', 'keystone:admin'], /Impersonate-\* headers are not exactly those derived from the token/],
    ['a group the token does not give', ['Impersonate-Group', 'system:masters'], /Impersonate-\* headers are not exactly/],
    ['an extra the token does not give', ['Impersonate-Extra-scopes', 'all'], /Impersonate-\* headers are not exactly/],
    ['an Impersonate-Uid', ['impersonate-uid', '0'], /Impersonate-\* headers are not exactly/],
    ['a second Authorization', ['Authorization', 'Bearer someone-else'], /Authorization is not the gateway's own/],
    ["the caller's token", ['X-Auth-Token', 'alice-token'], /carries X-Auth-Token/],
    ['an X-Remote-User', ['X-Remote-User', 'admin'], /carries X-Remote-User/],
    ['an X-Forwarded-For', ['X-Forwarded-For', '10.0.0.1'], /carries X-Forwarded-For/],
    ["the caller's token in another header", ['X-Debug', 'alice-token'], /the caller's credential is in the outgoing X-Debug header/],
  ];
  for (const [what, extra, reason] of refusedLines) {
    it(`/k8s: ${what} is never sent (500, the reason logged, not the value)`, async () => {
      const gw = await k8sWith(extra);
      try {
        const before = upstream.requests.length;
        const res = await get(`${gw.url}/k8s/api/v1/namespaces/os-alpha/pods`, 'alice-token');
        assert.equal(res.status, 500);
        assert.equal(JSON.parse(res.body).kind, 'Status');
        assert.equal(upstream.requests.length, before, 'the request reached the apiserver');
        const logged = logs.lines.filter((l) => l.includes('broke an invariant')).at(-1) ?? '';
        assert.match(logged, reason);
        assert.doesNotMatch(logged, /alice-token|keystone:admin|someone-else/);
      } finally {
        await gw.close();
      }
    });
  }

  it('/k8s: the header step as built passes the check (the control)', async () => {
    const gw = await k8sWith([]);
    try {
      assert.equal((await get(`${gw.url}/k8s/api/v1/namespaces/os-alpha/pods`, 'alice-token')).status, 200);
    } finally {
      await gw.close();
    }
  });

  for (const [name, value] of [['Authorization', 'Bearer alice-token'], ['X-Auth-Token', 'alice-token'], ['Impersonate-User', 'admin'], ['X-Forwarded-For', '10.0.0.1']]) {
    it(`/docker: ${name} added by a broken header step is never sent to the engine (500)`, async () => {
      const steps = dockerSteps({ engine: engineUpstream(config.docker as NonNullable<GatewayConfig['docker']>), config: config.docker as NonNullable<GatewayConfig['docker']>, authUrl: config.keystone.authUrl });
      const broken = serve(mountOf({ ...steps, headers: (call, plan) => [...steps.headers(call, plan), name as string, value as string] }, context));
      const gw = await broken;
      try {
        const before = engine.requests.filter((r) => r.url.endsWith('/containers/json')).length;
        const res = await get(`${gw.url}/docker/v1.41/containers/json`, 'alice-token');
        assert.equal(res.status, 500);
        assert.match(JSON.parse(res.body).message, /internal error in the gateway/);
        assert.equal(engine.requests.filter((r) => r.url.endsWith('/containers/json')).length, before, 'the list reached the engine');
      } finally {
        await gw.close();
      }
    });
  }
});
