import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

const status = (url: string, token: string): Promise<number> =>
  new Promise((resolve, reject) => {
    http.get(url, { headers: { 'x-auth-token': token } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });

/**
 * Keystone's revocation events, followed (keystone.revocationPollSeconds): a revoked token stops working within a
 * poll, not after the cache TTL, and the sessions it opened end with the reason (issue 25).
 */
describe('revocation events from Keystone (Keystone double)', function () {
  this.timeout(20_000);
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeEach(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    keystone.register('bob-token', { user: 'bob', project: { id: 'p-beta', name: 'beta' }, roles: ['member'] });
    upstream = await new RecordingUpstream().start();
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, extraYaml: '', keystoneYaml: '  revocationPollSeconds: 0.05\n  cacheTtlSeconds: 300', captureLogs: true });
  });
  afterEach(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
  });

  const pods = (): string => `${gw.url}/k8s/api/v1/namespaces/os-alpha/pods`;

  it("a revoked token is refused at once after the next poll, although cached for 300 s; another user's token is not touched", async () => {
    assert.equal(await status(pods(), 'alice-token'), 200);
    assert.equal(await status(pods(), 'bob-token'), 200);
    const validations = keystone.validateCalls;
    keystone.revokeByEvent({ user_id: 'alice-id' });
    await keystone.revocationPolled(2);
    assert.equal(await status(pods(), 'alice-token'), 401);
    assert.equal(await status(pods(), 'bob-token'), 200);
    assert.equal(keystone.validateCalls, validations + 1, "only alice's token was asked about again");
    const revoked = await gw.gateway.metrics.registry.getSingleMetricAsString('zun_gateway_revoked_tokens_total');
    assert.match(revoked, /^zun_gateway_revoked_tokens_total 1$/m);
  });

  it('the watch and the exec session a token opened end when it is revoked: the watch with an ERROR Status, both audited with the reason', async () => {
    assert.equal(await status(pods(), 'alice-token'), 200);
    const watch = await RawConnection.open(gw.port);
    watch.write(requestHead('GET', '/k8s/watch?watch=1', [['X-Auth-Token', 'alice-token']]));
    await watch.until((t) => t.includes('ADDED'));
    const exec = await RawConnection.open(gw.port);
    exec.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/p/exec', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
    await exec.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));
    const bobWatch = await RawConnection.open(gw.port);
    bobWatch.write(requestHead('GET', '/k8s/watch?watch=1', [['X-Auth-Token', 'bob-token']]));
    await bobWatch.until((t) => t.includes('ADDED'));

    keystone.revokeByEvent({ audit_id: 'audit-alice-token' });
    const watched = await watch.until((t) => t.endsWith('0\r\n\r\n'));
    assert.match(watched, /\{"type":"ERROR","object":\{"kind":"Status".*"message":"session ended: token revoked; get a new one.*"code":401\}\}\n\r\n0\r\n\r\n$/);
    await exec.untilEnded();
    assert.equal(bobWatch.isEnded, false, "bob's watch was ended too");
    bobWatch.destroy();

    const records = gw.audit.records.filter((r) => r.user?.name === 'alice' && r.reason === 'session ended: token revoked');
    assert.deepEqual(records.map((r) => r.kind).sort(), ['request', 'session']);
  });

  it('a watch spelled as the apiserver also reads it (?watch=yes) ends when its token is revoked', async () => {
    const watch = await RawConnection.open(gw.port);
    watch.write(requestHead('GET', '/k8s/watch?watch=yes', [['X-Auth-Token', 'alice-token']]));
    await watch.until((t) => t.includes('ADDED'));
    keystone.revokeByEvent({ audit_id: 'audit-alice-token' });
    assert.match(await watch.until((t) => t.endsWith('0\r\n\r\n')), /session ended: token revoked/);
  });

  it('a session whose token left the cache (evicted, then validated again) still ends when the token is revoked', async () => {
    await gw.stop();
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, extraYaml: '', keystoneYaml: '  revocationPollSeconds: 0.05\n  cacheTtlSeconds: 300\n  cacheMaxEntries: 1' });
    const watch = await RawConnection.open(gw.port);
    watch.write(requestHead('GET', '/k8s/watch?watch=1', [['X-Auth-Token', 'alice-token']]));
    await watch.until((t) => t.includes('ADDED'));
    // bob's token takes the cache's only place, then alice's is validated again (another identity than the watch's).
    assert.equal(await status(pods(), 'bob-token'), 200);
    assert.equal(await status(pods(), 'alice-token'), 200);
    keystone.revokeByEvent({ audit_id: 'audit-alice-token' });
    assert.match(await watch.until((t) => t.endsWith('0\r\n\r\n')), /session ended: token revoked/);
  });

  it('Keystone away: cached tokens keep working; the poll resumes from where it stopped and applies what it missed', async () => {
    assert.equal(await status(pods(), 'alice-token'), 200);
    keystone.revocationEventsStatus = 503;
    await keystone.revocationPolled(1);
    keystone.revokeByEvent({ user_id: 'alice-id' });
    await keystone.revocationPolled(2);
    assert.equal(await status(pods(), 'alice-token'), 200, 'the event was not readable yet: the cached token still works');
    keystone.revocationEventsStatus = undefined;
    await keystone.revocationPolled(2);
    assert.equal(await status(pods(), 'alice-token'), 401);
    const polls = await gw.gateway.metrics.registry.getSingleMetricAsString('zun_gateway_revocation_polls_total');
    assert.match(polls, /outcome="error"\} [1-9]/);
  });

  it('a gateway refused the events (policy) says so once in its log and goes on serving', async () => {
    keystone.revocationEventsStatus = 403;
    await keystone.revocationPolled(3);
    assert.equal(await status(pods(), 'alice-token'), 200);
    const said = gw.logs.lines.filter((l) => l.includes('identity:list_revoke_events'));
    assert.equal(said.length, 1, said.join('\n'));
  });
});
