import assert from 'node:assert/strict';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { LoginRelay, type SignInForm } from '../../src/auth/login-relay.js';
import { LoginThrottle } from '../../src/auth/login-throttle.js';
import { hasCode } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

const alice: SignInForm = { method: 'password', username: 'alice', password: 'alice-pw', project: 'alpha', domain: 'Default' };
const wrong: SignInForm = { ...alice, password: 'guess' };

const rejectsWith = (p: Promise<unknown>, status: number, message: RegExp) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof Error && (err as Error & { status?: number }).status === status, `expected ${status}, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });

describe('LoginRelay (the sign-in page relay, against the Keystone double)', () => {
  let keystone: KeystoneDouble;
  let client: KeystoneClient;
  let forgotten: string[];
  let now: number;

  function relay(limits: { perAddress?: number; perUser?: number } = {}) {
    const throttle = new LoginThrottle({ perAddress: limits.perAddress ?? 20, perUser: limits.perUser ?? 3, windowMs: 900_000, maxTracked: 100, now: () => now });
    return new LoginRelay({ keystone: client, throttle, authenticator: { forget: (t) => void forgotten.push(t) }, logger: silentLogger(), now: () => now });
  }

  beforeEach(async () => {
    keystone = await new KeystoneDouble().start();
    const user = keystone.addUser({ id: 'alice-id', name: 'alice', password: 'alice-pw', projects: { alpha: { id: 'alpha-id', roles: ['member', 'reader'] } } });
    keystone.applicationCredentials.set('ac-1', { id: 'ac-1', name: 'ac', description: '', secret: 'ac-secret', user, project: { id: 'alpha-id', name: 'alpha' }, roles: ['member'] });
    client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 1000 });
    forgotten = [];
    now = Date.now();
  });
  afterEach(async () => {
    client.close();
    await keystone.stop();
  });

  it('relays a password sign-in scoped to the project and domain typed, and hands back the token and who it is', async () => {
    const { token, identity } = await relay().signIn(alice, '10.0.0.1');
    assert.match(token, /^user-token-/);
    assert.equal(identity.user.name, 'alice');
    assert.equal(identity.project.name, 'alpha');
    assert.deepEqual(identity.roles, ['member', 'reader']);
    const asked = keystone.issueRequests.at(-1) as { identity: { methods: string[]; password: { user: unknown } }; scope: unknown };
    assert.deepEqual(asked.identity.methods, ['password']);
    assert.deepEqual(asked.identity.password.user, { name: 'alice', domain: { name: 'Default' }, password: 'alice-pw' });
    assert.deepEqual(asked.scope, { project: { name: 'alpha', domain: { name: 'Default' } } });
  });

  it('relays an application credential without a scope (the credential carries its project)', async () => {
    const { identity } = await relay().signIn({ method: 'application_credential', id: 'ac-1', secret: 'ac-secret' }, '10.0.0.1');
    assert.equal(identity.project.id, 'alpha-id');
    const asked = keystone.issueRequests.at(-1) as { identity: { methods: string[]; application_credential: unknown }; scope?: unknown };
    assert.deepEqual(asked.identity, { methods: ['application_credential'], application_credential: { secret: 'ac-secret', id: 'ac-1' } });
    assert.equal(asked.scope, undefined);
  });

  it("says Keystone's refusal in plain words, with what to check", async () => {
    await rejectsWith(
      relay().signIn(wrong, '10.0.0.1'),
      401,
      /^Keystone refused the sign-in \(HTTP 401: The request you have made requires authentication\.\): check the user name, password, project and domain/,
    );
    await rejectsWith(relay().signIn({ method: 'application_credential', id: 'ac-1', secret: 'nope' }, '10.0.0.1'), 401, /check the application credential ID and secret/);
  });

  it('after the limit of failures for a user name, refuses with 429 and Retry-After without asking Keystone', async () => {
    const r = relay({ perUser: 3 });
    for (let i = 0; i < 3; i += 1) await rejectsWith(r.signIn(wrong, `10.0.0.${i}`), 401, /refused/);
    const asked = keystone.issueCalls;
    await assert.rejects(r.signIn(alice, '10.0.0.9'), (err: unknown) => hasCode(err, 'rate_limited') && err.headers?.['Retry-After'] === '900');
    assert.equal(keystone.issueCalls, asked, 'Keystone was asked');
    // The name is counted whatever its letter case; after the window it may try again.
    await assert.rejects(r.signIn({ ...alice, username: 'ALICE' }, '10.0.0.9'), (err: unknown) => hasCode(err, 'rate_limited'));
    now += 900_000;
    await r.signIn(alice, '10.0.0.9');
  });

  it('after the limit of failures from an address, refuses every user name from it', async () => {
    keystone.addUser({ id: 'bob-id', name: 'bob', password: 'bob-pw', projects: { beta: { id: 'beta-id', roles: ['member'] } } });
    const r = relay({ perAddress: 2, perUser: 10 });
    await rejectsWith(r.signIn(wrong, '10.0.0.1'), 401, /refused/);
    await rejectsWith(r.signIn({ ...wrong, username: 'bob' }, '10.0.0.1'), 401, /refused/);
    await rejectsWith(r.signIn(alice, '10.0.0.1'), 429, /from your address/);
    await r.signIn(alice, '10.0.0.2');
  });

  it('a Keystone that is down is 503 and counts as no failure', async () => {
    const r = relay({ perUser: 1 });
    keystone.failWith = 500;
    await rejectsWith(r.signIn(alice, '10.0.0.1'), 503, /Keystone failed to answer the sign-in \(HTTP 500\)/);
    keystone.failWith = undefined;
    await keystone.stop();
    await rejectsWith(r.signIn(alice, '10.0.0.1'), 503, /Keystone cannot be reached right now/);
    await keystone.start();
    await r.signIn(alice, '10.0.0.1');
  });

  it('a token that cannot be used here (no project) is refused and revoked at once', async () => {
    keystone.addUser({ id: 'carol-id', name: 'carol', password: 'carol-pw', projects: { alpha: { id: 'alpha-id', roles: ['member'] } } });
    keystone.loginOverride = { project: null };
    await rejectsWith(relay().signIn({ ...alice, username: 'carol', password: 'carol-pw' }, '10.0.0.1'), 403, /unscoped/);
    assert.equal(keystone.revoked.length, 1);
  });

  it('sign-out revokes the token at Keystone and makes this replica forget it', async () => {
    const r = relay();
    const { token } = await r.signIn(alice, '10.0.0.1');
    await r.signOut(token);
    assert.deepEqual(keystone.revoked, [token]);
    assert.deepEqual(forgotten, [token]);
    // Already revoked (or unknown): signed out all the same.
    await r.signOut(token);
    keystone.failWith = 503;
    await rejectsWith(r.signOut('user-token-x'), 503, /Keystone did not revoke the token \(HTTP 503\): it stays valid until it expires/);
  });

  it('checks the form: required fields, Keystone\'s length limits, no unknown keys', () => {
    const bad = (body: unknown, message: RegExp) =>
      assert.throws(() => LoginRelay.parseForm(body), (err: unknown) => hasCode(err, 'credentials_invalid') && err.status === 400 && message.test(err.message));
    bad({ method: 'password', username: 'alice', password: 'x', domain: 'Default' }, /^Project is required$/);
    bad({ method: 'password', username: ' ', password: 'x', project: 'p' }, /^User name is required$/);
    bad({ method: 'password', username: 'a'.repeat(256), password: 'x', project: 'p' }, /User name is longer than Keystone allows/);
    bad({ method: 'password', username: 'a', password: 'x'.repeat(4097), project: 'p' }, /Password is longer than Keystone allows/);
    bad({ method: 'application_credential', id: 'x' }, /^Secret is required$/);
    bad({ method: 'token', token: 'x' }, /method must be "password" or "application_credential"/);
    bad({ method: 'password', username: 'a', password: 'x', project: 'p', scope: 'system' }, /scope/);
    bad('not an object', /method must be/);
    assert.deepEqual(LoginRelay.parseForm({ method: 'password', username: ' alice ', password: ' pw ', project: 'alpha' }), {
      method: 'password',
      username: 'alice',
      password: ' pw ',
      project: 'alpha',
      domain: 'Default',
    });
  });
});
