import assert from 'node:assert/strict';
import { assertApiserverRequest } from '../../src/k8s/outgoing-check.js';
import { GatewayError } from '../../src/errors.js';

const identityLines = ['Impersonate-User', 'keystone:alice', 'Impersonate-Group', 'keystone:project:p', 'Impersonate-Group', 'keystone:project:p:role:member'];
const expected = { identityLines, authorization: 'Bearer gw' };
const base = ['Host', 'api:6443', 'Accept', 'application/json', 'Authorization', 'Bearer gw', ...identityLines];

function refused(headers: readonly string[], reason: RegExp, exp: Parameters<typeof assertApiserverRequest>[1] = expected): void {
  assert.throws(
    () => assertApiserverRequest(headers, exp),
    (err: unknown) => err instanceof GatewayError && err.code === 'outgoing_violation' && reason.test(err.message),
  );
}

/** The apiserver's final check, alone: every request passes it, so it is written to allocate nothing; these pin what it refuses. */
describe('assertApiserverRequest (k8s/outgoing-check.ts)', () => {
  it('passes exactly the derived lines (names in any case) and the gateway Authorization', () => {
    assertApiserverRequest(base, expected);
    assertApiserverRequest(base.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v)), expected);
    assertApiserverRequest(['Host', 'x'], { identityLines: [], asGateway: true, authorization: undefined });
  });

  it('refuses the derived lines out of order, one missing, one more, or a value changed', () => {
    const swapped = [...base.slice(0, 6), identityLines[0] as string, identityLines[1] as string, ...identityLines.slice(4), ...identityLines.slice(2, 4)];
    refused(swapped, /not exactly those derived/);
    refused(base.slice(0, -2), /not exactly those derived/);
    refused([...base, 'Impersonate-Group', 'system:masters'], /not exactly those derived/);
    refused([...base.slice(0, -1), 'keystone:project:p:role:admin'], /not exactly those derived/);
    refused([...base, 'Impersonate-', 'x'], /not exactly those derived/);
  });

  it('refuses Impersonate-* on a read as the gateway, and derived lines naming no user or two', () => {
    refused(base, /own read on a tenant's behalf carries Impersonate/, { identityLines: [], asGateway: true, authorization: 'Bearer gw' });
    refused(base, /is not one user's Impersonate-\* lines/, { identityLines: identityLines.slice(2), authorization: 'Bearer gw' });
    refused(base, /is not one user's Impersonate-\* lines/, { identityLines: [...identityLines, 'impersonate-user', 'keystone:bob'], authorization: 'Bearer gw' });
    refused(base, /is not one user's Impersonate-\* lines/, { identityLines: [...identityLines, 'Authorization', 'Bearer gw'], authorization: 'Bearer gw' });
  });

  it('judges a frozen derived list once, and still holds every header list to it', () => {
    const frozen = Object.freeze([...identityLines]);
    const exp = { identityLines: frozen, authorization: 'Bearer gw' };
    const sent = ['Host', 'api:6443', 'Authorization', 'Bearer gw', ...frozen];
    assertApiserverRequest(sent, exp);
    assertApiserverRequest(sent, exp);
    refused([...sent.slice(0, -1), 'keystone:project:p:role:admin'], /not exactly those derived/, exp);
    refused([...sent.slice(0, 4), ...frozen.slice(2), ...frozen.slice(0, 2)], /not exactly those derived/, exp);
    refused([...sent, 'Impersonate-Group', 'system:masters'], /not exactly those derived/, exp);
    const twoUsers = Object.freeze([...identityLines, 'Impersonate-User', 'keystone:bob']);
    for (let i = 0; i < 2; i += 1) refused(sent, /is not one user's Impersonate-\* lines/, { identityLines: twoUsers, authorization: 'Bearer gw' });
  });

  it("refuses another Authorization, a second one, none, and the caller's or forwarding headers", () => {
    refused(base.map((v) => (v === 'Bearer gw' ? 'Bearer other' : v)), /Authorization is not the gateway's own/);
    refused([...base, 'authorization', 'Bearer gw'], /Authorization is not the gateway's own/);
    refused(base.filter((v, i) => v !== 'Authorization' && base[i - 1] !== 'Authorization'), /Authorization is not the gateway's own/);
    refused([...base, 'X-Auth-Token', 't'], /carries X-Auth-Token/);
    refused([...base, 'x-remote-extra-scopes', 'all'], /carries x-remote-extra-scopes/);
  });
});
