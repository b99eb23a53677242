import assert from 'node:assert/strict';
import type { Identity } from '../../src/auth/identity.js';
import { ImpersonationError, impersonationHeaders } from '../../src/k8s/impersonation.js';
import { HeaderPolicyError, k8sRequestHeaders } from '../../src/k8s/request-headers.js';

const config = { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true };
const alice: Identity = {
  user: { id: 'u-1', name: 'alice', domainId: 'default', domainName: 'Default' },
  project: { id: 'p-1', name: 'Alpha Team', domainId: 'default', domainName: 'Default' },
  roles: ['member', 'reader', 'system:masters', 'with,comma'],
  expiresAt: new Date(Date.now() + 3600_000),
};

function lines(raw: readonly string[], name: string): string[] {
  return raw.filter((_, i) => i % 2 === 1 && (raw[i - 1] as string).toLowerCase() === name);
}

const build = (raw: string[], upgrade = false) =>
  k8sRequestHeaders(raw, { hostHeader: 'api:6443', authorization: 'Bearer sa', identityHeaders: impersonationHeaders(alice, config), upgrade });

describe('Kubernetes request headers', () => {
  const hostileNames = [
    'Authorization', 'X-Auth-Token', 'Impersonate-User', 'Impersonate-Group', 'Impersonate-Uid', 'Impersonate-Extra-scopes',
    'Impersonate-Extra-keystone-project-id', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Forwarded', 'X-Real-IP',
    'X-Remote-User', 'X-Remote-Group', 'X-Remote-Extra-Scopes', 'Proxy-Authorization', 'X-Subject-Token',
  ];
  const variants = (n: string) => [n, n.toLowerCase(), n.toUpperCase(), n.replace(/[a-z]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c))];

  it('removes every client identity, impersonation, forwarding and remote-user header, in every letter case', () => {
    const raw: string[] = [];
    for (const n of hostileNames) for (const v of variants(n)) raw.push(v, 'evil');
    raw.push('Accept', 'application/json');
    const out = build(raw);
    assert.ok(!out.includes('evil'), `a hostile value survived: ${JSON.stringify(out)}`);
    assert.deepEqual(lines(out, 'accept'), ['application/json']);
    assert.deepEqual(lines(out, 'authorization'), ['Bearer sa']);
    assert.deepEqual(lines(out, 'impersonate-user'), ['keystone:alice']);
  });

  for (const named of ['Impersonate-User', 'authorization', 'X-Remote-User', 'IMPERSONATE-GROUP', 'x-auth-token', 'X-Forwarded-For', 'Impersonate-Extra-x']) {
    it(`refuses Connection: ${named}`, () => {
      assert.throws(() => build(['Connection', `keep-alive, ${named}`]), HeaderPolicyError);
    });
  }

  it('adds the gateway identity last, after the client headers', () => {
    const out = build(['Accept', '*/*', 'User-Agent', 'kubectl']);
    const firstIdentity = out.indexOf('Authorization');
    assert.ok(firstIdentity > out.indexOf('User-Agent'));
    assert.equal(out[0], 'Host');
    assert.equal(out[1], 'api:6443');
  });

  it('drops hop-by-hop headers and those Connection names; keeps the upgrade handshake on upgrades', () => {
    const plain = build(['Connection', 'close, X-Secret', 'X-Secret', '1', 'Keep-Alive', '5', 'TE', 'trailers', 'Upgrade', 'SPDY/3.1']);
    assert.deepEqual(lines(plain, 'x-secret'), []);
    assert.deepEqual(lines(plain, 'upgrade'), []);
    assert.deepEqual(lines(plain, 'keep-alive'), []);
    const up = build(['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1'], true);
    assert.deepEqual(lines(up, 'upgrade'), ['SPDY/3.1']);
    assert.deepEqual(lines(up, 'connection'), ['Upgrade']);
    assert.deepEqual(lines(up, 'content-length'), ['0'], 'a POST upgrade is never sent chunked');
  });

  it('keeps chunked framing for a chunked body', () => {
    assert.deepEqual(lines(build(['Transfer-Encoding', 'chunked']), 'transfer-encoding'), ['chunked']);
  });
});

describe('impersonation headers', () => {
  it('one Impersonate-Group line per group, prefixed: a role named system:masters stays inside keystone:', () => {
    const out = impersonationHeaders(alice, config);
    assert.deepEqual(lines(out, 'impersonate-group'), [
      'keystone:project:p-1',
      'keystone:project:p-1:role:member',
      'keystone:project:p-1:role:reader',
      'keystone:project:p-1:role:system:masters',
      'keystone:project:p-1:role:with,comma',
    ]);
    assert.ok(lines(out, 'impersonate-group').every((g) => g.startsWith('keystone:')));
  });

  it('carries ids and the project name as extras, percent-encoding what a header cannot hold', () => {
    const out = impersonationHeaders({ ...alice, project: { ...alice.project, name: 'équipe' } }, config);
    assert.deepEqual(lines(out, 'impersonate-extra-keystone-user-id'), ['u-1']);
    assert.deepEqual(lines(out, 'impersonate-extra-keystone-project-id'), ['p-1']);
    assert.deepEqual(lines(out, 'impersonate-extra-keystone-project-name'), ['%C3%A9quipe']);
    assert.deepEqual(lines(impersonationHeaders(alice, { ...config, extras: false }), 'impersonate-extra-keystone-user-id'), []);
  });

  it('fails closed: no user or no project means no headers at all', () => {
    assert.throws(() => impersonationHeaders({ ...alice, user: { ...alice.user, name: '' } }, config), ImpersonationError);
    assert.throws(() => impersonationHeaders({ ...alice, project: { ...alice.project, id: '' } }, config), ImpersonationError);
    assert.throws(() => impersonationHeaders({ ...alice, user: { ...alice.user, name: 'al\r\nice' } }, config), ImpersonationError);
  });
});
