import assert from 'node:assert/strict';
import { Authenticator } from '../../src/auth/authenticator.js';
import { AuthError } from '../../src/auth/errors.js';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { SERVICE_TOKEN_RENEW_BEFORE_MS, ServiceTokenProvider } from '../../src/auth/service-token.js';
import { silentLogger } from '../../src/observability/logger.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

const credentials = {
  username: 'gateway',
  password: 'pw',
  userDomainName: 'Default',
  projectName: 'service',
  projectDomainName: 'Default',
};

function setup(keystone: KeystoneDouble, options: { ttlMs?: number; negativeMax?: number; now?: () => number } = {}) {
  const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 1000 });
  const service = new ServiceTokenProvider(client, credentials, silentLogger(), options.now);
  const auth = new Authenticator(
    client,
    service,
    {
      cacheTtlMs: options.ttlMs ?? 300_000,
      cacheMaxEntries: 1000,
      negativeCacheTtlMs: 10_000,
      negativeCacheMaxEntries: options.negativeMax ?? 100,
      ...(options.now ? { now: options.now } : {}),
    },
    silentLogger(),
  );
  return { auth, client };
}

const rejectsWith = async (p: Promise<unknown>, status: number, message?: RegExp) =>
  assert.rejects(p, (err: unknown) => err instanceof AuthError && err.status === status && (message === undefined || message.test(err.message)));

describe('Authenticator (Keystone double)', () => {
  let keystone: KeystoneDouble;

  beforeEach(async () => {
    keystone = await new KeystoneDouble().start();
  });
  afterEach(async () => {
    await keystone.stop();
  });

  it('100 concurrent requests with one new token make exactly one validation call', async () => {
    keystone.register('t1', { user: 'alice' });
    keystone.delayMs = 50;
    const { auth } = setup(keystone);
    const all = await Promise.all(Array.from({ length: 100 }, () => auth.authenticate('t1')));
    assert.equal(keystone.validateCalls, 1);
    assert.equal(keystone.issueCalls, 1);
    assert.ok(all.every((i) => i.user.name === 'alice' && i.project.id === 'alpha-id'));
  });

  it('serves later requests from the cache without asking Keystone again', async () => {
    keystone.register('t1');
    const { auth } = setup(keystone);
    await auth.authenticate('t1');
    await auth.authenticate('t1');
    await auth.authenticate('t1');
    assert.equal(keystone.validateCalls, 1);
  });

  it("caps a cached token's lifetime at its expires_at, re-checked on every hit", async () => {
    let now = Date.now();
    keystone.register('short', { expiresAt: new Date(now + 5_000) });
    const { auth } = setup(keystone, { ttlMs: 300_000, now: () => now });
    await auth.authenticate('short');
    now += 4_000;
    await auth.authenticate('short');
    assert.equal(keystone.validateCalls, 1, 'still cached before expiry');
    now += 2_000;
    // The double itself uses the real clock, so it still calls the token valid: only the cache's expiry check
    // can make the gateway ask again.
    await auth.authenticate('short').catch(() => undefined);
    assert.equal(keystone.validateCalls, 2, 'the cache dropped the token at its expires_at');
  });

  it('answers 401 for a token Keystone does not know, and keeps the negative cache bounded', async () => {
    const { auth } = setup(keystone, { negativeMax: 10 });
    await rejectsWith(auth.authenticate('bogus-0'), 401, /not valid/);
    await rejectsWith(auth.authenticate('bogus-0'), 401);
    assert.equal(keystone.validateCalls, 1, 'the second try came from the negative cache');
    for (let i = 1; i < 50; i += 1) await rejectsWith(auth.authenticate(`bogus-${i}`), 401);
    assert.ok(auth.cacheSize.refused <= 10, `negative cache holds ${auth.cacheSize.refused}`);
  });

  it('answers 503, never 401, when Keystone is down; cached tokens keep working', async () => {
    keystone.register('cached');
    keystone.register('fresh');
    const { auth } = setup(keystone);
    await auth.authenticate('cached');
    await keystone.stop();
    await rejectsWith(auth.authenticate('fresh'), 503, /Keystone is unavailable/);
    assert.equal((await auth.authenticate('cached')).user.name, 'alice');
    await keystone.start();
    assert.equal((await auth.authenticate('fresh')).user.name, 'alice', 'recovers without a restart, 503 was not cached');
  });

  it('answers 503 when Keystone fails with 500', async () => {
    keystone.register('t');
    const { auth } = setup(keystone);
    keystone.failWith = 500;
    await rejectsWith(auth.authenticate('t'), 503);
  });

  it('re-issues its own service token when Keystone answers 401, once, and reuses it otherwise', async () => {
    keystone.register('a');
    keystone.register('b');
    keystone.register('c');
    const { auth } = setup(keystone);
    await auth.authenticate('a');
    await auth.authenticate('b');
    assert.equal(keystone.issueCalls, 1, 'one service token for several validations');
    keystone.revokeServiceTokens();
    await auth.authenticate('c');
    assert.equal(keystone.issueCalls, 2, 'a new service token after the 401');
  });

  it('renews the service token before it expires', async () => {
    let now = Date.now();
    keystone.register('a');
    keystone.register('b');
    keystone.serviceTokenLifetimeMs = SERVICE_TOKEN_RENEW_BEFORE_MS + 60_000;
    const { auth } = setup(keystone, { now: () => now });
    await auth.authenticate('a');
    now += 61_000;
    await auth.authenticate('b');
    assert.equal(keystone.issueCalls, 2);
  });

  it('answers 403 for unscoped, domain- and system-scoped tokens, explaining how to get a project token', async () => {
    keystone.register('unscoped', { project: null });
    keystone.register('domain', { domainScope: { id: 'd', name: 'Ops' } });
    keystone.register('system', { system: true });
    const { auth } = setup(keystone);
    await rejectsWith(auth.authenticate('unscoped'), 403, /unscoped.*--os-project-name/);
    await rejectsWith(auth.authenticate('domain'), 403, /domain 'Ops'.*project-scoped/);
    await rejectsWith(auth.authenticate('system'), 403, /system-scoped/);
    const any = await auth.authenticateAnyScope('domain');
    assert.ok('scope' in any && any.scope === 'domain');
  });

  it('refuses application-credential tokens with access rules (not enforced here)', async () => {
    keystone.register('restricted', { accessRules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }] });
    const { auth } = setup(keystone);
    await rejectsWith(auth.authenticate('restricted'), 403, /access rules/);
  });
});
