import assert from 'node:assert/strict';
import { accessRulesAllow, describeRules, pathMatches } from '../../src/auth/access-rules.js';

describe('application credential access rules (auth/access-rules.ts, as keystonemiddleware matches them)', () => {
  it('`*` and `{name}` match within one segment, `**` across segments, the rest literally, the whole path', () => {
    const cases: Array<[string, string, boolean]> = [
      ['/docker/**', '/docker/_ping', true],
      ['/docker/**', '/docker/v1.47/containers/abc/attach', true],
      ['/docker/**', '/docker', false],
      ['/docker/**', '/k8s/docker/x', false],
      ['/docker/**', '/dockerx/_ping', false],
      ['/v2.1/servers/*', '/v2.1/servers/abc', true],
      ['/v2.1/servers/*', '/v2.1/servers/abc/action', false],
      ['/v2.1/servers/{server_id}/action', '/v2.1/servers/abc/action', true],
      ['/v2.1/servers/{server_id}/action', '/v2.1/servers//action', false],
      // A dot is a dot (keystonemiddleware leaves it a regex wildcard; the stricter reading refuses more).
      ['/v1.41/info', '/v1x41/info', false],
      ['/v1.41/info', '/v1.41/info', true],
    ];
    for (const [pattern, path, expected] of cases) assert.equal(pathMatches(path, pattern), expected, `${pattern} ~ ${path}`);
  });

  it('a rule allows only its own service type and exact method', () => {
    const rules = [{ service: 'zun-gateway', method: 'GET', path: '/docker/**' }];
    assert.equal(accessRulesAllow(rules, 'zun-gateway', { method: 'GET', path: '/docker/_ping' }), true);
    assert.equal(accessRulesAllow(rules, 'zun-gateway', { method: 'HEAD', path: '/docker/_ping' }), false);
    assert.equal(accessRulesAllow(rules, 'zun-gateway', { method: 'get', path: '/docker/_ping' }), false);
    assert.equal(accessRulesAllow(rules, 'compute', { method: 'GET', path: '/docker/_ping' }), false);
    assert.equal(accessRulesAllow([], 'zun-gateway', { method: 'GET', path: '/docker/_ping' }), false);
  });

  it('are said with the methods of one path together', () => {
    const rules = ['GET', 'HEAD'].map((method) => ({ service: 'zun-gateway', method, path: '/docker/**' }));
    assert.equal(describeRules([...rules, { service: 'compute', method: 'GET', path: '/v2.1/servers' }]), 'GET, HEAD /docker/** on zun-gateway; GET /v2.1/servers on compute');
  });
});
