import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import type { Identity } from '../../src/auth/identity.js';
import { impersonationHeaders, scopeImpersonationHeaders } from '../../src/k8s/impersonation.js';
import { k8sRequestHeaders } from '../../src/k8s/request-headers.js';
import { HOSTILE_NAMES, hostileHeaderLines, letterCases } from '../helpers/hostile-headers.js';

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
  const impersonating = (lower: string): boolean => lower.startsWith('impersonate-');

  it('removes every client identity, forwarding and remote-user header, in every letter case', () => {
    const raw = [...hostileHeaderLines({ skip: impersonating }), 'Accept', 'application/json'];
    const out = build(raw);
    const survivors = out.filter((v) => v.startsWith('hostile-'));
    assert.deepEqual(survivors, [], `hostile values survived: ${JSON.stringify(out)}`);
    assert.deepEqual(lines(out, 'accept'), ['application/json']);
    assert.deepEqual(lines(out, 'authorization'), ['Bearer sa']);
    assert.deepEqual(lines(out, 'impersonate-user'), ['keystone:alice']);
    assert.deepEqual(lines(out, 'impersonate-uid'), []);
    for (const name of ['x-forwarded-for', 'forwarded', 'x-remote-user', 'x-remote-group', 'x-remote-extra-x', 'x-auth-token', 'impersonate-extra-anything']) {
      assert.deepEqual(lines(out, name), [], `${name} survived`);
    }
  });

  for (const name of HOSTILE_NAMES.filter((n) => !impersonating(n.toLowerCase()))) {
    it(`removes ${name} in every letter case (${letterCases(name).join(', ')})`, () => {
      const raw: string[] = [];
      letterCases(name).forEach((variant, i) => raw.push(variant, `hostile-${i}`));
      const out = build(raw);
      assert.deepEqual(out.filter((v) => v.startsWith('hostile-')), [], JSON.stringify(out));
    });
  }

  for (const name of HOSTILE_NAMES.filter((n) => impersonating(n.toLowerCase()))) {
    it(`refuses ${name} in every letter case with 403 naming kubectl --as (dropped, can-i --as answered for the caller)`, () => {
      for (const variant of letterCases(name)) {
        assert.throws(
          () => build(['Accept', '*/*', variant, 'someone']),
          (e: unknown) => e instanceof GatewayError && e.status === 403 && e.message.includes('kubectl --as') && e.message.startsWith(variant),
        );
      }
    });
  }

  it('on discovery and OpenAPI requests, client Impersonate-* headers are dropped instead (kubectl reads discovery raw)', () => {
    const out = k8sRequestHeaders(['Impersonate-User', 'hostile-1', 'impersonate-group', 'hostile-2'], {
      hostHeader: 'api:6443', authorization: 'Bearer sa', identityHeaders: impersonationHeaders(alice, config), upgrade: false, discovery: true,
    });
    assert.deepEqual(out.filter((v) => v.startsWith('hostile-')), []);
    assert.deepEqual(lines(out, 'impersonate-user'), ['keystone:alice']);
  });

  it('on discovery requests, every client Impersonate-* header (Uid and Extra-* included) is dropped in every letter case', () => {
    const raw = hostileHeaderLines({ skip: (lower) => !impersonating(lower) });
    assert.ok(raw.length >= 6 * 4 * 2, 'the table has Uid and Extra-* names');
    const out = k8sRequestHeaders(raw, {
      hostHeader: 'api:6443', authorization: 'Bearer sa', identityHeaders: impersonationHeaders(alice, config), upgrade: false, discovery: true,
    });
    assert.deepEqual(out.filter((v) => v.startsWith('hostile-')), [], JSON.stringify(out));
    assert.deepEqual(lines(out, 'impersonate-uid'), []);
    assert.deepEqual(lines(out, 'impersonate-extra-scopes'), []);
  });

  for (const named of [
    'Impersonate-User', 'authorization', 'X-Remote-User', 'IMPERSONATE-GROUP', 'impersonate-uid', 'x-auth-token', 'X-Forwarded-For',
    'Impersonate-Extra-x', 'x-remote-extra-y', 'Forwarded',
  ]) {
    it(`refuses Connection: ${named} (GatewayError)`, () => {
      assert.throws(() => build(['Connection', named]), GatewayError);
      assert.throws(() => build(['Connection', `keep-alive, ${named}`]), GatewayError);
      // A second Connection line is as good as the first for an attacker.
      assert.throws(() => build(['Connection', 'keep-alive', 'connection', named]), GatewayError);
      // The Connection header's own name in any letter case (Node reads it case-insensitively, so would a proxy).
      for (const variant of letterCases('Connection')) assert.throws(() => build([variant, named]), GatewayError, variant);

    });
  }

  it('allows ordinary Connection options', () => {
    assert.doesNotThrow(() => build(['Connection', 'keep-alive']));
    assert.doesNotThrow(() => build(['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1'], true));
  });

  it('adds the gateway identity last, after the client headers, and replaces the client Host', () => {
    const out = build(['Host', 'evil.example', 'Accept', '*/*', 'User-Agent', 'kubectl', 'X-Last-Client-Header', '1']);
    const names = out.filter((_, i) => i % 2 === 0);
    const lastClient = names.indexOf('X-Last-Client-Header');
    assert.ok(lastClient > 0);
    for (const identityName of ['Authorization', 'Impersonate-User', 'Impersonate-Group', 'Impersonate-Extra-keystone-user-id']) {
      const at = names.indexOf(identityName);
      assert.ok(at > lastClient, `${identityName} at ${at} does not follow the client headers (last at ${lastClient})`);
    }
    assert.deepEqual(out.slice(0, 2), ['Host', 'api:6443']);
    assert.deepEqual(lines(out, 'host'), ['api:6443']);
  });

  it('removes the bearer entry from Sec-WebSocket-Protocol and keeps the other subprotocols', () => {
    const bearer = `base64url.bearer.authorization.k8s.io.${Buffer.from('secret-token').toString('base64url')}`;
    const out = build(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Protocol', `v5.channel.k8s.io, ${bearer}, v4.channel.k8s.io`], true);
    assert.deepEqual(lines(out, 'sec-websocket-protocol'), ['v5.channel.k8s.io, v4.channel.k8s.io']);
    const onlyBearer = build(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Protocol', bearer], true);
    assert.deepEqual(lines(onlyBearer, 'sec-websocket-protocol'), []);
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

  it('leaves body framing to the HTTP client: no Transfer-Encoding for undici, chunked re-stated for an upgrade request; Expect never', () => {
    assert.deepEqual(lines(build(['Transfer-Encoding', 'chunked']), 'transfer-encoding'), []);
    assert.deepEqual(lines(build(['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1', 'Transfer-Encoding', 'chunked'], true), 'transfer-encoding'), ['chunked']);
    assert.deepEqual(lines(build(['Expect', '100-continue', 'Content-Length', '3']), 'expect'), []);
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

  it('a Keystone role named system:masters becomes keystone:project:<id>:role:system:masters, never the group itself', () => {
    const groups = lines(impersonationHeaders({ ...alice, roles: ['system:masters'] }, config), 'impersonate-group');
    assert.ok(groups.includes('keystone:project:p-1:role:system:masters'));
    assert.ok(!groups.includes('system:masters'));
    assert.ok(groups.every((g) => !g.startsWith('system:')));
  });

  it('a Keystone user named system:admin becomes keystone:system:admin, never a system: user (invariants.md 5)', () => {
    const out = impersonationHeaders({ ...alice, user: { ...alice.user, name: 'system:admin' } }, config);
    assert.deepEqual(lines(out, 'impersonate-user'), ['keystone:system:admin']);
  });

  it('whatever the prefix, a Keystone user never becomes a system: user: prefix "system" and a user named ":masters" is refused', () => {
    const loose = { ...config, userPrefix: 'system' };
    assert.throws(() => impersonationHeaders({ ...alice, user: { ...alice.user, name: ':masters' } }, loose), (e: unknown) => e instanceof GatewayError && /reserved by Kubernetes/.test(e.message));
    assert.throws(
      () => scopeImpersonationHeaders({ scope: 'system', user: { ...alice.user, name: ':Masters' }, roles: [], expiresAt: alice.expiresAt }, ['ops'], loose),
      GatewayError,
    );
    assert.deepEqual(lines(impersonationHeaders(alice, loose), 'impersonate-user'), ['systemalice']);
  });

  it('a role name with a comma stays one Impersonate-Group line', () => {

    const groups = lines(impersonationHeaders({ ...alice, roles: ['a,b'] }, config), 'impersonate-group');
    assert.deepEqual(groups, ['keystone:project:p-1', 'keystone:project:p-1:role:a,b']);
  });

  it('fails closed: no user or no project means no headers at all', () => {
    assert.throws(() => impersonationHeaders({ ...alice, user: { ...alice.user, name: '' } }, config), GatewayError);
    assert.throws(() => impersonationHeaders({ ...alice, project: { ...alice.project, id: '' } }, config), GatewayError);
    assert.throws(() => impersonationHeaders({ ...alice, user: { ...alice.user, name: 'al\r\nice' } }, config), GatewayError);
  });
});
