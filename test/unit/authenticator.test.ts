import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mock } from 'node:test';
import { Authenticator } from '../../src/auth/authenticator.js';

import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { ProjectTags } from '../../src/auth/project-tags.js';
import { SERVICE_REFUSAL_HOLD_MS, SERVICE_TOKEN_RENEW_BEFORE_MS, ServiceTokenProvider } from '../../src/auth/service-token.js';
import { tokenKey } from '../../src/auth/token-cache.js';
import type { ServiceCredentials } from '../../src/config/schema.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ManualDeadlines } from '../helpers/changes.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

const credentials = {
  username: 'gateway',
  password: 'pw',
  userDomainName: 'Default',
  projectName: 'service',
  projectDomainName: 'Default',
};

function setup(
  keystone: KeystoneDouble,
  options: { ttlMs?: number; negativeMax?: number; now?: () => number; deadlines?: ManualDeadlines; service?: ServiceCredentials; revalidateMs?: number; projectTags?: boolean } = {},
) {
  const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 1000, ...(options.deadlines ? { deadline: options.deadlines.signal } : {}) });
  const service = new ServiceTokenProvider(client, options.service ?? credentials, silentLogger(), options.now);
  const auth = new Authenticator(
    client,
    service,
    {
      cacheTtlMs: options.ttlMs ?? 300_000,
      cacheMaxEntries: 1000,
      negativeCacheTtlMs: 10_000,
      negativeCacheMaxEntries: options.negativeMax ?? 100,
      ...(options.revalidateMs !== undefined ? { revalidateMs: options.revalidateMs } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.projectTags ? { projectTags: new ProjectTags(client, { ttlMs: options.ttlMs ?? 300_000, refusedTtlMs: 10_000, maxEntries: 100, ...(options.now ? { now: options.now } : {}) }, silentLogger()) } : {}),
    },
    silentLogger(),
  );
  return { auth, client };
}

const rejectsWith = async (p: Promise<unknown>, status: number, message?: RegExp) =>
  assert.rejects(p, (err: unknown) => err instanceof GatewayError && err.status === status && (message === undefined || message.test(err.message)));

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
    const { auth } = setup(keystone);
    const all = await Promise.all(Array.from({ length: 100 }, () => auth.authenticate('t1')));
    assert.equal(keystone.validateCalls, 1);
    assert.equal(keystone.issueCalls, 1);
    assert.ok(all.every((i) => i.user.name === 'alice' && i.project.id === 'alpha-id'));
  });

  it('validates every token at Keystone whatever it looks like: JWS and Fernet tokens carry no roles or revocation (invariants.md 16)', async () => {
    const { auth } = setup(keystone);
    const jws = `eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify({ sub: 'alice', exp: 9999999999 })).toString('base64url')}.c2ln`;
    const fernet = `gAAAAAB${'x'.repeat(170)}`;
    for (const token of [jws, fernet]) {
      const before = keystone.validateCalls;
      await rejectsWith(auth.authenticate(token), 401);
      assert.equal(keystone.validateCalls - before, 1, `${token.slice(0, 12)}... was asked at Keystone`);
    }
  });

  it('serves later requests from the cache without asking Keystone again', async () => {

    keystone.register('t1');
    const { auth } = setup(keystone);
    await auth.authenticate('t1');
    await auth.authenticate('t1');
    await auth.authenticate('t1');
    assert.equal(keystone.validateCalls, 1);
  });

  it('asks Keystone again once the cache TTL has passed', async () => {
    let now = Date.now();
    keystone.register('t1');
    const { auth } = setup(keystone, { ttlMs: 1_000, now: () => now });
    await auth.authenticate('t1');
    now += 900;
    await auth.authenticate('t1');
    assert.equal(keystone.validateCalls, 1, 'within the TTL');
    now += 200;
    await auth.authenticate('t1');
    assert.equal(keystone.validateCalls, 2, 'after the TTL');
  });

  it('by default the cache runs on the wall clock (Date.now, which expires_at is in): a token is not served after it expired', async () => {
    // Node's mock timers move Date (the gateway's default clock, and the double's) and nothing else.
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      keystone.register('brief', { expiresAt: new Date(Date.now() + 1_000) });
      const { auth } = setup(keystone, { ttlMs: 300_000 });
      await auth.authenticate('brief');
      mock.timers.tick(900);
      await auth.authenticate('brief');
      assert.equal(keystone.validateCalls, 1);
      mock.timers.tick(200);
      await rejectsWith(auth.authenticate('brief'), 401);
      assert.equal(keystone.validateCalls, 2, 'Keystone was asked again after expires_at');
    } finally {
      mock.timers.reset();
    }
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

  describe('validated again when used after revalidateMs (Keystone records no revocation event for a removed role)', () => {
    /** Waits for the background validation's outcome (an HTTP round trip to the double); gives up after 1000 looks. */
    const until = async (done: () => boolean): Promise<void> => {
      for (let i = 0; !done(); i += 1) {
        if (i >= 1000) throw new Error('the background validation did not happen');
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    it('a role removed (Keystone now 404s the token): the request that found it cached goes on, the next is refused, its sessions are told', async () => {
      let now = Date.now();
      keystone.register('t1', { roles: ['member'] });
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 10_000 });
      const revoked: string[] = [];
      auth.onRevoked((identity) => revoked.push(identity.user.name));
      await auth.authenticate('t1');
      now += 9_000;
      await auth.authenticate('t1');
      assert.equal(keystone.validateCalls, 1, 'not asked again before revalidateMs');
      keystone.revoke('t1');
      now += 1_000;
      assert.equal((await auth.authenticate('t1')).user.name, 'alice', 'the request that found it cached is not held up');
      await until(() => revoked.length > 0);
      assert.equal(keystone.validateCalls, 2);
      assert.deepEqual(revoked, ['alice']);
      await rejectsWith(auth.authenticate('t1'), 401);
      assert.equal(keystone.validateCalls, 2, 'the refusal was cached by the revalidation');
    });

    it('one role of two removed: the token goes on with the roles Keystone gives now, and the sessions opened with more end', async () => {
      let now = Date.now();
      keystone.register('t1', { roles: ['member', 'reader'] });
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 10_000 });
      const revoked: Array<readonly string[]> = [];
      auth.onRevoked((identity) => revoked.push(identity.roles));
      assert.deepEqual((await auth.authenticate('t1')).roles, ['member', 'reader']);
      keystone.register('t1', { roles: ['reader'] });
      now += 10_000;
      await auth.authenticate('t1');
      await until(() => revoked.length > 0);
      assert.deepEqual(revoked, [['member', 'reader']]);
      assert.deepEqual((await auth.authenticate('t1')).roles, ['reader']);
    });

    it("a project tag removed (it opened a cluster): read again with the token, the token goes on without it, and the sessions opened with it end", async () => {
      let now = Date.now();
      keystone.register('t1', { project: { id: 'p-alpha', name: 'alpha' } });
      keystone.projectTags.set('p-alpha', ['west', 'gpu']);
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 10_000, projectTags: true });
      const tagsOf = (i: Awaited<ReturnType<typeof auth.authenticate>>): readonly string[] | undefined => i.project.tags;
      const revoked: Array<readonly string[] | undefined> = [];
      auth.onRevoked((identity) => revoked.push('project' in identity ? identity.project.tags : undefined));
      assert.deepEqual(tagsOf(await auth.authenticate('t1')), ['west', 'gpu']);
      keystone.projectTags.set('p-alpha', ['gpu']);
      now += 10_000;
      await auth.authenticate('t1');
      await until(() => revoked.length > 0);
      assert.deepEqual(revoked, [['west', 'gpu']]);
      assert.deepEqual(tagsOf(await auth.authenticate('t1')), ['gpu']);
    });

    it('the same answer keeps the cached identity (its sessions go on); one validation per interval however many requests', async () => {
      let now = Date.now();
      keystone.register('t1');
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 10_000 });
      const first = await auth.authenticate('t1');
      const revoked: unknown[] = [];
      auth.onRevoked((identity) => revoked.push(identity));
      now += 10_000;
      await Promise.all(Array.from({ length: 20 }, () => auth.authenticate('t1')));
      await until(() => keystone.validateCalls === 2);
      now += 5_000;
      assert.equal(await auth.authenticate('t1'), first);
      assert.equal(keystone.validateCalls, 2);
      assert.deepEqual(revoked, []);
    });

    it('Keystone down while validating again: the cached token keeps working, and is asked about again only after another interval', async () => {
      let now = Date.now();
      keystone.register('t1');
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 10_000 });
      await auth.authenticate('t1');
      // A 200 that is no token: Keystone (or what is in front of it) is broken, which says nothing about the token.
      keystone.validationBody = '<html>bad gateway</html>';
      now += 10_000;
      await auth.authenticate('t1');
      await until(() => keystone.validateCalls === 2);
      keystone.validationBody = undefined;
      now += 1_000;
      assert.equal((await auth.authenticate('t1')).user.name, 'alice');
      now += 9_000;
      // Each look is a request: it asks again once the interval is over and the earlier background validation is done.
      await until(() => {
        void auth.authenticate('t1');
        return keystone.validateCalls === 3;
      });
    });

    it('0 (off): never asked again within the cache TTL', async () => {
      let now = Date.now();
      keystone.register('t1');
      const { auth } = setup(keystone, { now: () => now, revalidateMs: 0 });
      await auth.authenticate('t1');
      keystone.revoke('t1');
      now += 200_000;
      assert.equal((await auth.authenticate('t1')).user.name, 'alice');
      assert.equal(keystone.validateCalls, 1);
    });
  });

  it('answers 401 for a token Keystone does not know, and keeps the negative cache bounded', async () => {
    const { auth } = setup(keystone, { negativeMax: 10 });
    await rejectsWith(auth.authenticate('bogus-0'), 401, /not valid/);
    await rejectsWith(auth.authenticate('bogus-0'), 401);
    assert.equal(keystone.validateCalls, 1, 'the second try came from the negative cache');
    let largest = 0;
    for (let i = 1; i < 50; i += 1) {
      await rejectsWith(auth.authenticate(`bogus-${i}`), 401);
      largest = Math.max(largest, auth.cacheSize.refused);
    }
    assert.equal(largest, 10, `the negative cache grew to ${largest}, bounded at 10`);
    assert.equal(keystone.validateCalls, 50);
  });

  it('50 concurrent requests with one unknown token make one validation call, and all get 401', async () => {
    const { auth } = setup(keystone);
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => auth.authenticate('bogus-burst')));
    assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof GatewayError && o.reason.status === 401));
    assert.equal(keystone.validateCalls, 1);
  });

  it('keys its caches by a SHA-256 of the token, never the token itself (invariants.md 14)', () => {
    const token = 'gAAAAABsecret-token-value';
    const key = tokenKey(token);
    assert.equal(key, createHash('sha256').update(token).digest('base64'));
    assert.ok(!key.includes('secret'), 'the key carries none of the token');
    assert.notEqual(tokenKey(`${token}x`), key);
  });

  it('a 401 for an unknown token is remembered only for the negative-cache TTL', async () => {
    let now = Date.now();
    const { auth } = setup(keystone, { now: () => now });
    await rejectsWith(auth.authenticate('late-token'), 401);
    keystone.register('late-token');
    await rejectsWith(auth.authenticate('late-token'), 401);
    assert.equal(keystone.validateCalls, 1);
    now += 10_001;
    assert.equal((await auth.authenticate('late-token')).user.name, 'alice');
    assert.equal(keystone.validateCalls, 2);
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

  it('answers 503 when Keystone fails with 500, and does not cache that answer', async () => {
    keystone.register('t');
    const { auth } = setup(keystone);
    await auth.authenticate('t').then(() => undefined); // the service token is issued before the failure starts
    keystone.register('t2');
    keystone.failWith = 500;
    await rejectsWith(auth.authenticate('t2'), 503);
    keystone.failWith = undefined;
    assert.equal((await auth.authenticate('t2')).user.name, 'alice');
  });

  it('answers 503, never 401, for any other Keystone answer: 400, 403, 429, 502, or a 200 that is not a token (invariants.md 12)', async () => {
    keystone.register('t');
    const { auth } = setup(keystone);
    await auth.authenticate('t'); // the service token is issued before the failures start
    for (const status of [400, 403, 429, 502]) {
      keystone.register(`t-${status}`);
      keystone.failWith = status;
      await rejectsWith(auth.authenticate(`t-${status}`), 503);
      keystone.failWith = undefined;
    }
    keystone.register('t-body');
    for (const body of ['<html>gateway timeout</html>', '{"token":{"user":{}}}', '{}']) {
      keystone.validationBody = body;
      await rejectsWith(auth.authenticate('t-body'), 503);
    }
    keystone.validationBody = undefined;
    assert.equal((await auth.authenticate('t-body')).user.name, 'alice', 'none of those answers was cached');
  });

  it('answers 503 when Keystone is too slow (timeout), never 401', async () => {
    keystone.register('first');
    keystone.register('t');
    const deadlines = new ManualDeadlines();
    const { auth } = setup(keystone, { deadlines });
    await auth.authenticate('first'); // the service token is issued before Keystone goes silent
    keystone.delayMs = Infinity;
    const answer = auth.authenticate('t');
    await keystone.changes.until(() => keystone.received === 3);
    deadlines.expire(deadlines.made.length - 1);
    await rejectsWith(answer, 503, /Keystone is unavailable/);
  });

  it("answers 503 when Keystone rejects even a freshly issued service token (re-authenticates once only)", async () => {
    keystone.register('t');
    const { auth } = setup(keystone);
    keystone.rejectAllServiceTokens = true;
    await rejectsWith(auth.authenticate('t'), 503);
    assert.equal(keystone.issueCalls, 2, 'the first service token, then exactly one renewal');
    assert.equal(keystone.validateCalls, 2);
  });

  it("a refused service login (the gateway's wrong password) is a 503 that sends the user to the operator, not to retry", async () => {
    keystone.register('t');
    keystone.refuseLogins = true;
    const { auth } = setup(keystone);
    await rejectsWith(auth.authenticate('t'), 503, /refuses the gateway's own service account.*not a fault of your token.*operator/);
    // Keystone answering 5xx is an outage, not the operator's mistake: the retry message stays.
    keystone.refuseLogins = false;
    keystone.failWith = 500;
    const { auth: other } = setup(keystone);
    await rejectsWith(other.authenticate('t'), 503, /Keystone is unavailable.*retry shortly/);
  });

  it('a refused service login is not tried again for every request, only after SERVICE_REFUSAL_HOLD_MS', async () => {
    keystone.register('t');
    keystone.refuseLogins = true;
    let now = 1_000_000;
    const { auth } = setup(keystone, { now: () => now });
    for (let i = 0; i < 5; i++) await rejectsWith(auth.authenticate(`t`), 503, /operator/);
    assert.equal(keystone.issueCalls, 1, 'one login for five requests within the hold');
    now += SERVICE_REFUSAL_HOLD_MS + 1;
    keystone.refuseLogins = false;
    assert.equal((await auth.authenticate('t')).user.name, 'alice', 'asked again after the hold, and the login now works');
    assert.equal(keystone.issueCalls, 2);
  });

  it('asks for its service token with a project scope (password) or without one (application credential)', async () => {
    keystone.register('t');
    await setup(keystone).auth.authenticate('t');
    await setup(keystone, { service: { applicationCredentialId: 'ac-id', applicationCredentialSecret: 'ac-secret' } }).auth.authenticate('t');
    const [password, appCred] = keystone.issueRequests;
    assert.deepEqual(password?.identity?.methods, ['password']);
    assert.deepEqual(password?.scope, { project: { name: 'service', domain: { name: 'Default' } } });
    assert.deepEqual(appCred?.identity?.methods, ['application_credential']);
    assert.equal(appCred?.scope, undefined);
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
    assert.equal((await auth.authenticate('c')).user.name, 'alice', 'the validation succeeded with the new service token');
    assert.equal(keystone.issueCalls, 2, 'a new service token after the 401');
    assert.equal(keystone.validateCalls, 4, 'a, b, c refused (401), c again');
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

  it('reuses its service token until 120 s before expires_at, not a second later (invariants.md 13)', async () => {
    assert.equal(SERVICE_TOKEN_RENEW_BEFORE_MS, 120_000);
    let now = Date.now();
    for (const t of ['a', 'b', 'c']) keystone.register(t);
    keystone.serviceTokenLifetimeMs = 600_000;
    const { auth } = setup(keystone, { now: () => now });
    await auth.authenticate('a');
    now += 600_000 - 121_000; // 121 s left
    await auth.authenticate('b');
    assert.equal(keystone.issueCalls, 1, 'reused with 121 s left');
    now += 2_000; // 119 s left
    await auth.authenticate('c');
    assert.equal(keystone.issueCalls, 2, 'renewed with 119 s left');
  });

  it('answers 403 for an unscoped token, saying how to get a project-scoped one', async () => {
    keystone.register('unscoped', { project: null });
    const { auth } = setup(keystone);
    await rejectsWith(auth.authenticate('unscoped'), 403, /unscoped.*project-scoped token.*--os-project-name/);
    await rejectsWith(auth.authenticateAnyScope('unscoped'), 403, /unscoped/);
  });

  it('answers 403 for domain- and system-scoped tokens where no mapping is configured', async () => {
    keystone.register('domain', { domainScope: { id: 'd', name: 'Ops' } });
    keystone.register('system', { system: true });
    const { auth } = setup(keystone);
    await rejectsWith(auth.authenticate('domain'), 403, /domain 'Ops'.*project-scoped/);
    await rejectsWith(auth.authenticate('system'), 403, /system-scoped/);
    const any = await auth.authenticateAnyScope('domain');
    assert.ok('scope' in any && any.scope === 'domain');
  });

  it('application-credential tokens with access rules: accepted for the requests they allow, per request, never without one', async () => {
    keystone.register('docker-only', { accessRules: [{ service: 'zun-gateway', method: 'GET', path: '/docker/**' }] });
    keystone.register('compute', { accessRules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }] });
    const { auth } = setup(keystone);
    const identity = await auth.authenticate('docker-only', { method: 'GET', path: '/docker/v1.47/containers/json' });
    assert.deepEqual(identity.accessRules, [{ service: 'zun-gateway', method: 'GET', path: '/docker/**' }]);
    const validations = keystone.validateCalls;
    // The cached identity is checked again for every request: another method or path is refused.
    await rejectsWith(auth.authenticate('docker-only', { method: 'POST', path: '/docker/v1.47/containers/create' }), 403, /do not allow POST \/docker\/v1\.47\/containers\/create on zun-gateway/);
    await rejectsWith(auth.authenticate('docker-only', { method: 'GET', path: '/k8s/api' }), 403, /access rules \(GET \/docker\/\*\* on zun-gateway\) that do not allow/);
    assert.equal(keystone.validateCalls, validations, 'from the cache');
    // Where the caller says nothing of the request (whoami, /k8s), the rules cannot be checked: refused.
    await rejectsWith(auth.authenticate('docker-only'), 403, /with access rules \(GET \/docker\/\*\* on zun-gateway\), which this endpoint does not take/);
    // Rules for another service allow nothing here.
    await rejectsWith(auth.authenticate('compute', { method: 'GET', path: '/v2.1/servers' }), 403, /do not allow GET \/v2\.1\/servers on zun-gateway/);
  });

  it('access rules are matched against the configured service type (keystone.serviceType)', async () => {
    keystone.register('other-type', { accessRules: [{ service: 'container-gateway', method: 'GET', path: '/docker/**' }] });
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 1000 });
    const service = new ServiceTokenProvider(client, credentials, silentLogger());
    const options = { cacheTtlMs: 300_000, cacheMaxEntries: 10, negativeCacheTtlMs: 1000, negativeCacheMaxEntries: 10 };
    const typed = new Authenticator(client, service, { ...options, serviceType: 'container-gateway' }, silentLogger());
    assert.equal((await typed.authenticate('other-type', { method: 'GET', path: '/docker/_ping' })).user.name, 'alice');
    const plain = new Authenticator(client, service, options, silentLogger());
    await rejectsWith(plain.authenticate('other-type', { method: 'GET', path: '/docker/_ping' }), 403, /on zun-gateway/);
  });
});
