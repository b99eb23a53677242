import assert from 'node:assert/strict';
import { Authenticator } from '../../src/auth/authenticator.js';
import { isProjectScoped, type AnyIdentity } from '../../src/auth/identity.js';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { ProjectTags } from '../../src/auth/project-tags.js';
import { ServiceTokenProvider } from '../../src/auth/service-token.js';
import { GatewayError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { LineCollector } from '../helpers/memory-audit.js';

const credentials = { username: 'gateway', password: 'pw', userDomainName: 'Default', projectName: 'service', projectDomainName: 'Default' };
const TTL_MS = 300_000;

function setup(keystone: KeystoneDouble, options: { tags?: boolean; now?: () => number; logs?: LineCollector } = {}) {
  const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 1000 });
  const logger = options.logs !== undefined ? createLogger('info', options.logs) : silentLogger();
  const now = options.now ?? Date.now;
  const projectTags = new ProjectTags(client, { ttlMs: TTL_MS, refusedTtlMs: 10_000, maxEntries: 100, now }, logger);
  return new Authenticator(
    client,
    new ServiceTokenProvider(client, credentials, logger, now),
    { cacheTtlMs: TTL_MS, cacheMaxEntries: 100, negativeCacheTtlMs: 10_000, negativeCacheMaxEntries: 100, now, ...(options.tags !== false ? { projectTags } : {}) },
    logger,
  );
}

const tagsOf = (identity: AnyIdentity): readonly string[] | undefined => (isProjectScoped(identity) ? identity.project.tags : undefined);
const projectReads = (keystone: KeystoneDouble): string[] => keystone.identityCalls.filter((c) => c.path.startsWith('/v3/projects/')).map((c) => c.path);

describe('Keystone project tags on the identity (clusters open to tagged projects)', () => {
  let keystone: KeystoneDouble;
  beforeEach(async () => {
    keystone = await new KeystoneDouble().start();
  });
  afterEach(() => keystone.stop());

  it("the identity carries its project's tags, read with the caller's own token (the service identity may not read projects)", async () => {
    keystone.register('alice-token', { project: { id: 'p-alpha', name: 'alpha' } });
    keystone.projectTags.set('p-alpha', ['west', 'gpu']);
    const identity = await setup(keystone).authenticate('alice-token');
    assert.deepEqual(tagsOf(identity), ['west', 'gpu']);
    // The double answers a project read only to a token scoped to that project (or an admin's), as Keystone's policy.
    assert.deepEqual(projectReads(keystone), ['/v3/projects/p-alpha']);
  });

  it('one read per project, not per token; another project is read on its own', async () => {
    keystone.register('a1', { project: { id: 'p-alpha', name: 'alpha' } });
    keystone.register('a2', { user: 'dave', project: { id: 'p-alpha', name: 'alpha' } });
    keystone.register('b1', { user: 'bob', project: { id: 'p-beta', name: 'beta' } });
    keystone.projectTags.set('p-beta', ['east']);
    const auth = setup(keystone);
    const [a1, a2, b1] = await Promise.all([auth.authenticate('a1'), auth.authenticate('a2'), auth.authenticate('b1')]);
    assert.deepEqual([tagsOf(a1), tagsOf(a2), tagsOf(b1)], [[], [], ['east']]);
    assert.deepEqual(projectReads(keystone).sort(), ['/v3/projects/p-alpha', '/v3/projects/p-beta']);
  });

  it("a token is cached no longer than its project's tags are trusted: a tag removed is seen within one cache lifetime", async () => {
    let clock = Date.now();
    keystone.register('a1', { project: { id: 'p-alpha', name: 'alpha' } });
    keystone.register('a2', { user: 'dave', project: { id: 'p-alpha', name: 'alpha' } });
    keystone.projectTags.set('p-alpha', ['west']);
    const auth = setup(keystone, { now: () => clock });
    assert.deepEqual(tagsOf(await auth.authenticate('a1')), ['west']);
    // a2 arrives later and gets the tags read for a1: they are trusted until a1's read is TTL_MS old, not longer.
    clock += TTL_MS - 60_000;
    assert.deepEqual(tagsOf(await auth.authenticate('a2')), ['west']);
    keystone.projectTags.set('p-alpha', []);
    clock += 59_000;
    assert.deepEqual(tagsOf(await auth.authenticate('a2')), ['west'], 'within the lifetime: the cached identity');
    clock += 2000;
    assert.deepEqual(tagsOf(await auth.authenticate('a2')), []);
    assert.deepEqual(projectReads(keystone), ['/v3/projects/p-alpha', '/v3/projects/p-alpha']);
  });

  it('Keystone refusing the read: no tags (tagged clusters refuse the caller), and the operator is told what policy to fix', async () => {
    keystone.register('alice-token', { project: { id: 'p-alpha', name: 'alpha' } });
    keystone.projectTags.set('p-alpha', ['west']);
    keystone.projectReadStatus = 403;
    const logs = new LineCollector();
    const identity = await setup(keystone, { logs }).authenticate('alice-token');
    assert.deepEqual(tagsOf(identity), []);
    assert.ok(
      logs.lines.some((l) => /"level":50/.test(l) && /identity:get_project must let a project's members read it/.test(l)),
      logs.lines.join('\n'),
    );
  });

  it('Keystone failing the read: 503 (never 401), nothing cached, the next request tries again', async () => {
    keystone.register('alice-token', { project: { id: 'p-alpha', name: 'alpha' } });
    keystone.projectTags.set('p-alpha', ['west']);
    keystone.projectReadStatus = 500;
    const auth = setup(keystone);
    await assert.rejects(auth.authenticate('alice-token'), (e: unknown) => e instanceof GatewayError && e.code === 'keystone_unavailable' && e.status === 503);
    keystone.projectReadStatus = undefined;
    assert.deepEqual(tagsOf(await auth.authenticate('alice-token')), ['west']);
  });

  it('no cluster decides on tags: no project is read, and identities carry no tags', async () => {
    keystone.register('alice-token', { project: { id: 'p-alpha', name: 'alpha' } });
    const identity = await setup(keystone, { tags: false }).authenticate('alice-token');
    assert.equal(tagsOf(identity), undefined);
    assert.deepEqual(projectReads(keystone), []);
  });

  it('tokens without a project (domain scope) and tokens with access rules are not read', async () => {
    keystone.register('domain-token', { domainScope: { id: 'default', name: 'Default' }, roles: ['admin'] });
    keystone.register('rules-token', { project: { id: 'p-alpha', name: 'alpha' }, accessRules: [{ service: 'zun-gateway', method: 'GET', path: '/docker/**' }] });
    const auth = setup(keystone);
    await auth.authenticateAnyScope('domain-token');
    await auth.authenticateAnyScope('rules-token', { method: 'GET', path: '/docker/v1.41/info' }).catch(() => undefined);
    assert.deepEqual(projectReads(keystone), []);
  });
});
