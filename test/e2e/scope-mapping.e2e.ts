import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { httpsGet, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { E2E_CACHE_TTL_SECONDS } from './support/hooks.js';
import { createDomainUser, deleteUser, domainToken } from './support/keystone-admin.js';

describe('domain-scoped tokens mapped to groups (real Keystone, real apiserver)', function () {
  const tag = randomBytes(3).toString('hex');
  const group = `e2e-domain-admins-${tag}`;
  let gw: GatewayProcess | undefined;
  const users: string[] = [];

  before(async function () {
    this.timeout(60_000);
    gw = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS, k8s: [`impersonation: {domainScopeGroups: {Default: [${group}]}}`] });
  });

  after(async function () {
    this.timeout(30_000);
    await gw?.stop();
    for (const id of users) await deleteUser(id);
  });

  it("a user whose only role on the domain is reader does not act with the domain's listed (admin) groups", async function () {
    this.timeout(60_000);
    const name = `e2e-domain-reader-${tag}`;
    const password = `pw-${randomBytes(12).toString('hex')}`;
    users.push(await createDomainUser(name, password, 'reader'));
    // Keystone scopes a token to the domain for any role there.
    const token = await domainToken(name, password);
    const url = gw?.url ?? '';
    const whoami = await httpsGet(`${url}/whoami`, { 'X-Auth-Token': token });
    assert.equal(whoami?.status, 200, whoami?.body);
    const body = JSON.parse(whoami?.body ?? '{}') as { scope: string; roles: string[]; coes: { k8s: { groups: string[] } } };
    assert.equal(body.scope, 'domain');
    assert.deepEqual(body.roles, ['reader']);
    assert.deepEqual(body.coes.k8s.groups, [], `a domain reader was given ${JSON.stringify(body.coes.k8s.groups)}`);
    const res = await httpsGet(`${url}/k8s/api/v1/namespaces/default/configmaps`, { 'X-Auth-Token': token });
    assert.equal(res?.status, 403, res?.body);
    assert.match(JSON.parse(res?.body ?? '{}').message, /your roles on the domain 'Default' \(reader\) are not mapped/);
  });
});
