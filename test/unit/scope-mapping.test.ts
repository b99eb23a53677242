import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import type { ScopeOnlyIdentity } from '../../src/auth/identity.js';
import { identityFromToken, scopeRefusal } from '../../src/auth/token-identity.js';
import { parseConfig } from '../../src/config/load.js';
import type { ImpersonationConfig } from '../../src/config/schema.js';
import { scopeGroups, scopeImpersonationHeaders, unmappedRolesRefusal } from '../../src/k8s/impersonation.js';

const later = new Date(Date.now() + 3600_000).toISOString();
const user = { id: 'u1', name: 'ops', domain: { id: 'default', name: 'Default' } };

const base: ImpersonationConfig = { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true };

describe('project-scoped tokens', () => {
  it("read each field from where Keystone writes it: the user's domain and the project's apart, roles by name (invariants.md 15)", () => {
    const identity = identityFromToken(
      {
        token: {
          expires_at: later,
          user: { id: 'u1', name: 'alice', domain: { id: 'user-dom-id', name: 'UserDom' } },
          project: { id: 'p1', name: 'alpha', domain: { id: 'proj-dom-id', name: 'ProjDom' } },
          roles: [{ id: 'role-id-1', name: 'member' }, { id: 'role-id-2', name: 'reader' }],
          application_credential: { id: 'ac-1', restricted: true, access_rules: [] },
        },
      },
      Date.now(),
    );
    assert.ok('project' in identity);
    assert.deepEqual(identity.user, { id: 'u1', name: 'alice', domainId: 'user-dom-id', domainName: 'UserDom' });
    assert.deepEqual(identity.project, { id: 'p1', name: 'alpha', domainId: 'proj-dom-id', domainName: 'ProjDom' });
    assert.deepEqual(identity.roles, ['member', 'reader']);
    assert.equal(identity.expiresAt.toISOString(), later);
    // An application credential without access rules (Keystone writes an empty list) is usable.
    assert.equal(identity.applicationCredentialId, 'ac-1');
  });
});

describe('domain- and system-scoped tokens', () => {

  it('are recognised as such, not as projects; unscoped ones are refused with how to scope', () => {
    const domain = identityFromToken({ token: { expires_at: later, user, domain: { id: 'd1', name: 'Ops' }, roles: [{ id: 'r', name: 'admin' }] } }, Date.now());
    assert.equal((domain as ScopeOnlyIdentity).scope, 'domain');
    assert.ok(!('project' in domain));
    const system = identityFromToken({ token: { expires_at: later, user, system: { all: true } } }, Date.now());
    assert.equal((system as ScopeOnlyIdentity).scope, 'system');
    assert.throws(() => identityFromToken({ token: { expires_at: later, user } }, Date.now()), /unscoped.*openstack --os-project-name/);
  });

  it('map to configured groups only, by domain id or name; unmapped ones get an explanation', () => {
    const d: ScopeOnlyIdentity = { scope: 'domain', user: { id: 'u1', name: 'ops', domainId: 'default', domainName: 'Default' }, domain: { id: 'd1', name: 'Ops' }, roles: [], expiresAt: new Date(later) };
    assert.equal(scopeGroups(d, base), undefined);
    assert.match(scopeRefusal(d), /scoped to the domain 'Ops'.*maps no domain-scoped tokens/);
    const admin = { ...d, roles: ['admin', 'member', 'reader'] };
    assert.deepEqual(scopeGroups(admin, { ...base, domainScopeGroups: { Ops: ['ops-admins'] } }), ['ops-admins']);
    assert.deepEqual(scopeGroups(admin, { ...base, domainScopeGroups: { d1: ['by-id'] } }), ['by-id']);
    const s: ScopeOnlyIdentity = { scope: 'system', user: d.user, roles: ['admin', 'member', 'reader'], expiresAt: new Date(later) };
    assert.equal(scopeGroups(s, { ...base, domainScopeGroups: { Ops: ['x'] } }), undefined);
    assert.deepEqual(scopeGroups(s, { ...base, systemScopeGroups: ['cloud-admins'] }), ['cloud-admins']);
  });

  it('a list of groups goes to tokens with the admin role only: Keystone scopes a token to a domain for any role there', () => {
    // A user whose only role on the domain is reader gets a domain-scoped token from Keystone all the same.
    const reader: ScopeOnlyIdentity = { scope: 'domain', user: { id: 'u1', name: 'ops', domainId: 'default', domainName: 'Default' }, domain: { id: 'd1', name: 'Ops' }, roles: ['reader'], expiresAt: new Date(later) };
    const listed = { ...base, domainScopeGroups: { Ops: ['ops-admins'] } };
    assert.deepEqual(scopeGroups(reader, listed), []);
    assert.match(unmappedRolesRefusal(reader, listed), /your roles on the domain 'Ops' \(reader\) are not mapped .*\(mapped: admin\)/);
    const systemReader: ScopeOnlyIdentity = { scope: 'system', user: reader.user, roles: ['reader'], expiresAt: new Date(later) };
    assert.deepEqual(scopeGroups(systemReader, { ...base, systemScopeGroups: ['cloud-admins'] }), []);
  });

  it('a map from role to groups gives each token the groups of its roles', () => {
    const member: ScopeOnlyIdentity = { scope: 'domain', user: { id: 'u1', name: 'ops', domainId: 'default', domainName: 'Default' }, domain: { id: 'd1', name: 'Ops' }, roles: ['member', 'reader'], expiresAt: new Date(later) };
    const byRole = { ...base, domainScopeGroups: { Ops: { admin: ['ops-admins'], member: ['ops-editors', 'ops-viewers'], reader: ['ops-viewers'] } } };
    assert.deepEqual([...(scopeGroups(member, byRole) ?? [])].sort(), ['ops-editors', 'ops-viewers']);
    assert.deepEqual(scopeGroups({ ...member, roles: ['observer'] }, byRole), []);
    const yaml = `keystone:\n  authUrl: http://k:5000/v3\n  serviceCredentials: {applicationCredentialId: a, applicationCredentialSecret: b}\nk8s:\n  impersonation:\n    systemScopeGroups: {reader: [viewers], admin: [cloud-admins]}\n`;
    assert.deepEqual(parseConfig(yaml, {}).k8s?.impersonation.systemScopeGroups, { reader: ['viewers'], admin: ['cloud-admins'] });
    assert.throws(() => parseConfig(yaml.replace('[viewers]', '["system:masters"]'), {}), /must not start with 'system:'/);
    assert.throws(() => parseConfig(yaml.replace('{reader: [viewers], admin: [cloud-admins]}', '{}'), {}), /systemScopeGroups/);
  });

  it('impersonate the prefixed user with exactly the configured groups, one line each', () => {
    const s: ScopeOnlyIdentity = { scope: 'system', user: { id: 'u1', name: 'ops', domainId: 'default', domainName: 'Default' }, roles: ['admin'], expiresAt: new Date(later) };
    const lines = scopeImpersonationHeaders(s, ['cloud-admins', 'a,b'], base);
    assert.deepEqual(lines.slice(0, 6), ['Impersonate-User', 'keystone:ops', 'Impersonate-Group', 'cloud-admins', 'Impersonate-Group', 'a,b']);
    assert.ok(!lines.some((l) => l.includes('project:')));
  });

  it('fail closed: no groups, or no user name, is an error, never a request with the gateway\'s own rights', () => {
    const s: ScopeOnlyIdentity = { scope: 'system', user: { id: 'u1', name: 'ops', domainId: 'default', domainName: 'Default' }, roles: [], expiresAt: new Date(later) };
    assert.throws(() => scopeImpersonationHeaders(s, [], base), (e: unknown) => e instanceof GatewayError && /no groups are configured for system-scoped tokens/.test(e.message));
    assert.throws(() => scopeImpersonationHeaders({ ...s, user: { ...s.user, name: '' } }, ['cloud-admins'], base), GatewayError);
    const yaml = (groups: string) => `keystone:\n  authUrl: http://k:5000/v3\n  serviceCredentials: {applicationCredentialId: a, applicationCredentialSecret: b}\nk8s:\n  impersonation:\n    ${groups}\n`;
    assert.throws(() => parseConfig(yaml('systemScopeGroups: []'), {}), /systemScopeGroups/);
    assert.throws(() => parseConfig(yaml('domainScopeGroups: {Ops: []}'), {}), /domainScopeGroups/);
    assert.throws(() => parseConfig(yaml('domainScopeGroups: {Ops: ["system:masters"]}'), {}), /must not start with 'system:'/);
  });

  it('configuration refuses system: groups for them', () => {
    const yaml = (groups: string) => `keystone:\n  authUrl: http://k:5000/v3\n  serviceCredentials: {applicationCredentialId: a, applicationCredentialSecret: b}\nk8s:\n  impersonation:\n    systemScopeGroups: [${groups}]\n`;
    assert.throws(() => parseConfig(yaml('"system:masters"'), {}), /k8s\.impersonation\.systemScopeGroups\.0: must not start with 'system:'/);
    assert.deepEqual(parseConfig(yaml('cloud-admins'), {}).k8s?.impersonation.systemScopeGroups, ['cloud-admins']);
  });
});
