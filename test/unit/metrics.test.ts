import assert from 'node:assert/strict';
import { Metrics } from '../../src/observability/metrics.js';

describe('metrics', () => {
  it('exports the failure counters operations.md says to alert on at 0 before the first failure (a series first seen at 1 shows no increase)', async () => {
    const metrics = new Metrics({ processMetrics: false });
    // Each mount registers its COE as it is made (routes/pipeline.ts).
    for (const coe of ['k8s', 'docker']) metrics.registerCoe(coe);
    // And each Kubernetes cluster as it is loaded (gateway/mounts.ts).
    for (const cluster of ['east', 'west']) metrics.registerCluster(cluster);
    const text = await metrics.registry.metrics();
    for (const series of [
      'zun_gateway_keystone_errors_total{operation="issue_token"} 0',
      'zun_gateway_keystone_errors_total{operation="validate_token"} 0',
      'zun_gateway_keystone_errors_total{operation="ping"} 0',
      'zun_gateway_keystone_retries_total{operation="validate_token"} 0',
      'zun_gateway_keystone_retries_total{operation="ping"} 0',
      'zun_gateway_rate_limited_total{coe="k8s"} 0',
      'zun_gateway_rate_limited_total{coe="docker"} 0',
      'zun_gateway_provisioning_actions_total{action="provision",outcome="error",cluster="east"} 0',
      'zun_gateway_provisioning_actions_total{action="provision",outcome="error",cluster="west"} 0',
    ]) {
      assert.ok(text.split('\n').includes(series), `${series} missing from:\n${text}`);
    }
  });
});
