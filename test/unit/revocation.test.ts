import assert from 'node:assert/strict';
import { revokes, type RevocationEvent, type TokenFacts } from '../../src/auth/revocation.js';
import { tokenFacts } from '../../src/auth/token-identity.js';

const token: TokenFacts = {
  issuedAtMs: Date.parse('2026-12-07T10:00:00.500Z'),
  expiresAtSecond: Math.floor(Date.parse('2026-12-07T11:00:00.900Z') / 1000),
  userId: 'u-alice',
  userDomainId: 'd-users',
  projectId: 'p-alpha',
  scopeDomainId: 'd-projects',
  roleIds: ['r-member', 'r-reader'],
  auditId: 'audit-1',
  auditChainId: 'audit-0',
  trust: { id: 't-1', trustorId: 'u-trustor', trusteeId: 'u-trustee' },
  consumerId: 'c-1',
};
const at = (extra: Partial<RevocationEvent>): RevocationEvent => ({ issued_before: '2026-12-07T10:00:01.000000Z', ...extra });

describe("revocation events: Keystone's own matching (revoke/backends/sql.py and models/revoke_model.py)", () => {
  it('an event revokes only tokens issued at or before its issued_before', () => {
    assert.equal(revokes(at({ user_id: 'u-alice' }), token), true);
    assert.equal(revokes({ issued_before: '2026-12-07T10:00:00.500000Z', user_id: 'u-alice' }, token), true, 'issued exactly then');
    assert.equal(revokes({ issued_before: '2026-12-07T10:00:00.000000Z', user_id: 'u-alice' }, token), false, 'a token issued after the event');
  });

  const cases: Array<[string, Partial<RevocationEvent>, Partial<RevocationEvent>]> = [
    ['user (the token user)', { user_id: 'u-alice' }, { user_id: 'u-bob' }],
    ['user (the trustor)', { user_id: 'u-trustor' }, { user_id: 'u-other' }],
    ['user (the trustee)', { user_id: 'u-trustee' }, { user_id: 'u-other' }],
    ['project', { project_id: 'p-alpha' }, { project_id: 'p-beta' }],
    ['audit id (openstack token revoke)', { audit_id: 'audit-1' }, { audit_id: 'audit-2' }],
    ['audit chain', { audit_chain_id: 'audit-0' }, { audit_chain_id: 'audit-9' }],
    ["domain (the user's)", { domain_id: 'd-users' }, { domain_id: 'd-other' }],
    ["domain (the scope's)", { domain_id: 'd-projects' }, { domain_id: 'd-other' }],
    ['domain scope', { domain_scope_id: 'd-projects' }, { domain_scope_id: 'd-users' }],
    ['role (unassigned from the project)', { role_id: 'r-reader' }, { role_id: 'r-admin' }],
    ['trust', { trust_id: 't-1' }, { trust_id: 't-2' }],
    ['OAuth consumer', { consumer_id: 'c-1' }, { consumer_id: 'c-2' }],
    ['expiry (to the second)', { expires_at: '2026-12-07T11:00:00.000000Z' }, { expires_at: '2026-12-07T11:00:01.000000Z' }],
  ];
  for (const [what, matching, other] of cases) {
    it(`matches by ${what}, and not another`, () => {
      assert.equal(revokes(at(matching), token), true);
      assert.equal(revokes(at(other), token), false);
    });
  }

  it('every attribute an event names must match; null attributes match anything', () => {
    assert.equal(revokes(at({ user_id: 'u-alice', project_id: 'p-beta' }), token), false);
    assert.equal(revokes(at({ user_id: 'u-alice', project_id: null, role_id: null }), token), true);
    assert.equal(revokes(at({ role_id: 'r-member', project_id: 'p-alpha' }), { ...token, roleIds: ['r-reader'] }), false);
  });

  it("reads a token's facts from Keystone's description of it", () => {
    const facts = tokenFacts({
      token: {
        expires_at: '2026-12-07T11:00:00.900000Z',
        issued_at: '2026-12-07T10:00:00.500000Z',
        audit_ids: ['audit-1', 'audit-0'],
        user: { id: 'u-alice', name: 'alice', domain: { id: 'd-users' } },
        project: { id: 'p-alpha', name: 'alpha', domain: { id: 'd-projects' } },
        roles: [{ id: 'r-member', name: 'member' }, { id: 'r-reader', name: 'reader' }],
        'OS-TRUST:trust': { id: 't-1', trustor_user: { id: 'u-trustor' }, trustee_user: { id: 'u-trustee' } },
        'OS-OAUTH1': { consumer_id: 'c-1', access_token_id: 'a-1' },
      },
    });
    assert.deepEqual(facts, token);
  });
});
