import assert from 'node:assert/strict';
import { isolationWarnings } from '../../src/docker/health.js';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { startDockerTestGateway } from '../helpers/gateway.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

/** What the gateway can see of tenant isolation on its engine, and says (issue 24 point 2). */
describe('isolation warnings about the Docker engine', () => {
  let engine: FakeDockerEngine;
  let upstream: Upstream;

  beforeEach(async () => {
    engine = await new FakeDockerEngine().start();
    upstream = new Upstream('http://docker', undefined, engine.socketPath);
  });
  afterEach(async () => {
    upstream.close();
    await engine.stop();
  });

  it('until the operator says the host rules are applied, it says it cannot see the host firewall, and what to do', async () => {
    const warnings = await isolationWarnings(upstream, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /cannot see the engine host's firewall: .*reach the host's ports and other projects' containers.*docs\/operations\.md.*docker\.isolationRulesApplied: true/);
    assert.deepEqual(await isolationWarnings(upstream, true), []);
  });

  it('bridge traffic invisible to iptables, and project networks with IPv6, are named', async () => {
    engine.info = { ...engine.info, BridgeNfIptables: false };
    engine.networks.set('zun-p-alpha', { [OWNER_LABEL]: 'p-alpha' });
    engine.networks.set('shared-v6', {});
    engine.ipv6Networks.add('zun-p-alpha');
    engine.ipv6Networks.add('shared-v6');
    const warnings = await isolationWarnings(upstream, true);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] as string, /bridge-nf-call-iptables is off/);
    assert.match(warnings[1] as string, /project networks with IPv6 \(zun-p-alpha\): Docker does not isolate IPv6/);
  });

  it('/readyz carries the warnings in the docker check and stays ready (an engine-wide matter, not this replica\'s)', async () => {
    const keystone = await KeystoneDouble.withAlice();
    const gw = await startDockerTestGateway(keystone.url, engine.socketPath);
    try {
      const res = await fetch(`http://127.0.0.1:${gw.port}/readyz`);
      const body = (await res.json()) as { ready: boolean; checks: { docker: { ok: boolean; warnings?: string[] } } };
      assert.equal(res.status, 200);
      assert.equal(body.checks.docker.ok, true);
      assert.match(body.checks.docker.warnings?.join('\n') ?? '', /cannot see the engine host's firewall/);
    } finally {
      await gw.stop();
      await keystone.stop();
    }
  });
});
