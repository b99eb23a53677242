import assert from 'node:assert/strict';
import { MAX_TOKEN_LENGTH, extractToken, stripBearerSubprotocol } from '../../src/auth/credentials.js';
import { AuthError } from '../../src/auth/errors.js';

const fails = (raw: string[], status: number, upgrade = false, message?: RegExp) =>
  assert.throws(() => extractToken(raw, { upgrade }), (e: unknown) => e instanceof AuthError && e.status === status && (!message || message.test(e.message)));

describe('token extraction', () => {
  it('reads X-Auth-Token and Authorization: Bearer (any case of the scheme)', () => {
    assert.equal(extractToken(['X-Auth-Token', 'abc'], { upgrade: false }), 'abc');
    assert.equal(extractToken(['authorization', 'Bearer abc'], { upgrade: false }), 'abc');
    assert.equal(extractToken(['Authorization', 'bEaReR   abc  '], { upgrade: false }), 'abc');
    assert.equal(extractToken(['X-Auth-Token', 'abc', 'Authorization', 'Bearer abc'], { upgrade: false }), 'abc');
  });

  it('reads the WebSocket bearer subprotocol, on upgrades only', () => {
    const proto = `v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.${Buffer.from('tok-1').toString('base64url')}`;
    assert.equal(extractToken(['Sec-WebSocket-Protocol', proto], { upgrade: true }), 'tok-1');
    fails(['Sec-WebSocket-Protocol', proto], 401, false, /no token/);
  });

  it('refuses ambiguity: several Authorization or X-Auth-Token headers, or disagreeing tokens (400)', () => {
    fails(['Authorization', 'Bearer a', 'authorization', 'Bearer a'], 400, false, /several Authorization/);
    fails(['X-Auth-Token', 'a', 'x-auth-token', 'b'], 400, false, /several X-Auth-Token/);
    fails(['X-Auth-Token', 'a', 'Authorization', 'Bearer b'], 400, false, /different tokens/);
    const proto = `base64url.bearer.authorization.k8s.io.${Buffer.from('b').toString('base64url')}`;
    fails(['X-Auth-Token', 'a', 'Sec-WebSocket-Protocol', proto], 400, true);
  });

  it('refuses empty, huge, non-ASCII and non-bearer credentials with 401', () => {
    fails([], 401, false, /no token/);
    fails(['X-Auth-Token', ''], 401, false, /empty/);
    fails(['Authorization', 'Bearer'], 401, false, /empty/);
    fails(['X-Auth-Token', 'x'.repeat(MAX_TOKEN_LENGTH + 1)], 401, false, /longer than/);
    fails(['X-Auth-Token', 'tök'], 401, false, /characters/);
    fails(['Authorization', 'Bearer a b'], 401, false, /characters/);
    fails(['Authorization', 'Basic dXNlcjpwYXNz'], 401, false, /scheme 'Basic'/);
  });

  it('refuses a malformed or repeated bearer subprotocol', () => {
    fails(['Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.not*base64'], 401, true, /base64url/);
    const one = `base64url.bearer.authorization.k8s.io.${Buffer.from('a').toString('base64url')}`;
    fails(['Sec-WebSocket-Protocol', `${one}, ${one}`], 400, true, /several bearer tokens/);
    fails(['Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.'], 401, true, /empty/);
  });

  it('accepts the same token given in X-Auth-Token and the subprotocol', () => {
    const proto = `v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.${Buffer.from('same').toString('base64url')}`;
    assert.equal(extractToken(['X-Auth-Token', 'same', 'Sec-WebSocket-Protocol', proto], { upgrade: true }), 'same');
  });

  it('strips only the bearer entry from Sec-WebSocket-Protocol', () => {
    assert.equal(stripBearerSubprotocol('v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.eHl6, v4.channel.k8s.io'), 'v5.channel.k8s.io, v4.channel.k8s.io');
    assert.equal(stripBearerSubprotocol('base64url.bearer.authorization.k8s.io.eHl6'), undefined);
    assert.equal(stripBearerSubprotocol('v5.channel.k8s.io,v4.channel.k8s.io'), 'v5.channel.k8s.io, v4.channel.k8s.io');
    assert.equal(stripBearerSubprotocol('SPDY/3.1+portforward.k8s.io'), 'SPDY/3.1+portforward.k8s.io');
  });
});
