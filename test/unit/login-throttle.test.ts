import assert from 'node:assert/strict';
import { LoginThrottle, addressKey } from '../../src/auth/login-throttle.js';
import { hasCode } from '../../src/errors.js';

const MINUTE = 60_000;

function throttle(overrides: Partial<{ perAddress: number; perUser: number; maxTracked: number }> = {}) {
  let now = 1_000_000;
  const t = new LoginThrottle({ perAddress: 4, perUser: 2, windowMs: 15 * MINUTE, maxTracked: 100, ...overrides, now: () => now });
  return { t, advance: (ms: number) => (now += ms) };
}

const refused = (fn: () => unknown, which: RegExp, retryAfter?: number) =>
  assert.throws(fn, (err: unknown) => {
    assert.ok(hasCode(err, 'rate_limited'), String(err));
    assert.equal(err.status, 429);
    assert.match(err.message, which);
    if (retryAfter !== undefined) assert.equal(err.headers?.['Retry-After'], String(retryAfter));
    return true;
  });

describe('LoginThrottle (failed sign-ins per address and per user name, injected clock)', () => {
  it('refuses a user name after its limit of failures, from any address, until the oldest leaves the window', () => {
    const { t, advance } = throttle();
    t.begin('10.0.0.1', 'user:default/alice');
    advance(MINUTE);
    t.begin('10.0.0.2', 'user:default/alice');
    refused(() => t.begin('10.0.0.3', 'user:default/alice'), /for this user name: try again in 14 minutes/, 14 * 60);
    // Others are not affected.
    t.begin('10.0.0.3', 'user:default/bob').succeeded();
    advance(14 * MINUTE - 1);
    refused(() => t.begin('10.0.0.3', 'user:default/alice'), /for this user name/, 1);
    advance(1);
    t.begin('10.0.0.3', 'user:default/alice');
  });

  it('refuses an address after its limit of failures, whatever user names it tries', () => {
    const { t } = throttle();
    for (const user of ['a', 'b', 'c', 'd']) t.begin('192.0.2.7', `user:default/${user}`);
    refused(() => t.begin('192.0.2.7', 'user:default/e'), /from your address/, 15 * 60);
    t.begin('192.0.2.8', 'user:default/e');
  });

  it('counts an attempt from its start, so parallel guesses cannot all pass before the first fails', () => {
    const { t } = throttle();
    const started = [t.begin('10.0.0.1', 'user:default/alice'), t.begin('10.0.0.2', 'user:default/alice')];
    assert.equal(started.length, 2);
    refused(() => t.begin('10.0.0.3', 'user:default/alice'), /for this user name/);
  });

  it("a success forgives the user's earlier failures and is not counted against the address", () => {
    const { t } = throttle({ perAddress: 2 });
    t.begin('10.0.0.1', 'user:default/alice');
    t.begin('10.0.0.1', 'user:default/alice').succeeded();
    // One failure left on the address (limit 2), none on alice: two more tries for alice from elsewhere pass.
    t.begin('10.0.0.2', 'user:default/alice');
    t.begin('10.0.0.3', 'user:default/alice');
    refused(() => t.begin('10.0.0.4', 'user:default/alice'), /for this user name/);
    t.begin('10.0.0.1', 'user:default/bob');
    refused(() => t.begin('10.0.0.1', 'user:default/carol'), /from your address/);
  });

  it('an attempt without a verdict (Keystone down) is taken back from both counts', () => {
    const { t } = throttle();
    for (let i = 0; i < 10; i += 1) t.begin('10.0.0.1', 'user:default/alice').inconclusive();
    t.begin('10.0.0.1', 'user:default/alice');
    t.begin('10.0.0.1', 'user:default/alice');
    refused(() => t.begin('10.0.0.1', 'user:default/alice'), /for this user name/);
  });

  it('settling an attempt twice changes nothing', () => {
    const { t } = throttle();
    t.begin('10.0.0.1', 'user:default/alice');
    const second = t.begin('10.0.0.1', 'user:default/alice');
    second.inconclusive();
    second.inconclusive();
    t.begin('10.0.0.1', 'user:default/alice');
    refused(() => t.begin('10.0.0.1', 'user:default/alice'), /for this user name/);
  });

  it('stays bounded: beyond maxTracked the least recently failed keys are forgotten', () => {
    const { t } = throttle({ maxTracked: 3 });
    t.begin('10.0.0.1', 'user:default/alice');
    t.begin('10.0.0.1', 'user:default/alice').inconclusive();
    t.begin('10.0.0.1', 'user:default/alice');
    refused(() => t.begin('10.0.0.9', 'user:default/alice'), /for this user name/);
    for (const u of ['x', 'y', 'z']) t.begin(`10.0.1.${u.charCodeAt(0)}`, `user:default/${u}`);
    t.begin('10.0.0.9', 'user:default/alice');
  });

  it('counts an IPv6 /64 as one address, and an IPv4-mapped address as its IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::5'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    const { t } = throttle();
    for (let i = 1; i <= 4; i += 1) t.begin(`2001:db8:1:2::${i}`, `user:default/u${i}`);
    refused(() => t.begin('2001:db8:1:2:ffff::9', 'user:default/u9'), /from your address/);
    t.begin('2001:db8:1:3::1', 'user:default/u9');
  });
});
