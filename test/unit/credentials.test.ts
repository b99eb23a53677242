import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { MAX_TOKEN_LENGTH, credentialSecret, extractCredential, extractToken, stripBearerSubprotocol } from '../../src/auth/credentials.js';


const fails = (raw: string[], status: number, upgrade = false, message?: RegExp) =>
  assert.throws(() => extractToken(raw, { upgrade }), (e: unknown) => e instanceof GatewayError && e.status === status && (!message || message.test(e.message)));

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

describe('credential extraction with application credentials (the Docker mount)', () => {
  const docker = { applicationCredentials: true, howTo: 'put it in HttpHeaders' };
  const basic = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`;
  const refused = (raw: string[], status: number, message: RegExp, upgrade = false) =>
    assert.throws(() => extractCredential(raw, upgrade, docker), (e: unknown) => e instanceof GatewayError && e.status === status && message.test(e.message));

  it('reads Authorization: Basic <id:secret> as an application credential (the secret may hold colons)', () => {
    assert.deepEqual(extractCredential(['Authorization', basic('app-id:se:cret')], false, docker), { kind: 'applicationCredential', id: 'app-id', secret: 'se:cret' });
    assert.deepEqual(extractCredential(['authorization', `bAsIc ${Buffer.from('a:b').toString('base64')}`], false, docker), { kind: 'applicationCredential', id: 'a', secret: 'b' });
  });

  it('still reads a token from X-Auth-Token or Bearer', () => {
    assert.deepEqual(extractCredential(['X-Auth-Token', 'tok'], false, docker), { kind: 'token', token: 'tok' });
    assert.deepEqual(extractCredential(['Authorization', 'Bearer tok'], false, docker), { kind: 'token', token: 'tok' });
  });

  it('refuses a Basic credential and a token together, a Basic without id or secret, and two Authorization headers', () => {
    refused(['Authorization', basic('a:b'), 'X-Auth-Token', 'tok'], 400, /both an application credential and a token/);
    refused(['Authorization', basic('no-colon')], 401, /application credential as <id>:<secret>/);
    refused(['Authorization', basic(':secret')], 401, /<id>:<secret>/);
    refused(['Authorization', basic('id:')], 401, /<id>:<secret>/);
    refused(['Authorization', basic('a:b'), 'Authorization', basic('c:d')], 400, /several Authorization headers/);
  });

  it("says the mount's own way to send a credential when there is none, and takes no WebSocket token where the mount does not", () => {
    refused([], 401, /no token; put it in HttpHeaders/);
    const proto = `base64url.bearer.authorization.k8s.io.${Buffer.from('tok').toString('base64url')}`;
    refused(['Sec-WebSocket-Protocol', proto], 401, /no token/, true);
  });

  it('without application credentials, Basic is a scheme not accepted here', () => {
    assert.throws(() => extractCredential(['Authorization', basic('a:b')], false, {}), (e: unknown) => e instanceof GatewayError && e.status === 401 && /scheme 'Basic' is not accepted/.test(e.message));
  });

  it('the credential secret is what the final check looks for', () => {
    assert.equal(credentialSecret({ kind: 'token', token: 't1' }), 't1');
    assert.equal(credentialSecret({ kind: 'applicationCredential', id: 'i', secret: 's' }), 's');
  });
});
