import assert from 'node:assert/strict';
import type { Identity } from '../../src/auth/identity.js';
import { Sessions, type Schedule, type SessionEndReason } from '../../src/routes/sessions.js';

/** A clock and timers that move only when told. */
function fakeTime(start = 1_000_000): { now: () => number; schedule: Schedule; advance(ms: number): void; pending(): number } {
  let t = start;
  let timers: Array<{ at: number; run: () => void }> = [];
  return {
    now: () => t,
    schedule: (ms, run) => {
      const timer = { at: t + ms, run };
      timers.push(timer);
      return () => (timers = timers.filter((x) => x !== timer));
    },
    advance(ms) {
      t += ms;
      const due = timers.filter((x) => x.at <= t);
      timers = timers.filter((x) => x.at > t);
      for (const x of due) x.run();
    },
    pending: () => timers.length,
  };
}

const identity = (expiresInMs: number, now: number): Identity => ({
  user: { id: 'u', name: 'alice', domainId: 'd', domainName: 'D' },
  project: { id: 'p', name: 'alpha', domainId: 'd', domainName: 'D' },
  roles: ['member'],
  expiresAt: new Date(now + expiresInMs),
});

describe('sessions live no longer than their token', () => {
  it("end when their token expires, each told why; another token's sessions go on", () => {
    const time = fakeTime();
    const sessions = new Sessions(time.now, time.schedule);
    const alice = identity(60_000, time.now());
    const bob = identity(120_000, time.now());
    const ended: string[] = [];
    sessions.track(alice, (r) => ended.push(`exec ${r}`));
    sessions.track(alice, (r) => ended.push(`watch ${r}`));
    sessions.track(bob, (r) => ended.push(`bob ${r}`));
    time.advance(59_999);
    assert.deepEqual(ended, []);
    time.advance(1);
    assert.deepEqual(ended, ['exec expired', 'watch expired']);
    assert.equal(sessions.size, 1);
  });

  it('end at once when their token is revoked, and no timer is left behind', () => {
    const time = fakeTime();
    const sessions = new Sessions(time.now, time.schedule);
    const alice = identity(3600_000, time.now());
    const ended: SessionEndReason[] = [];
    sessions.track(alice, (r) => ended.push(r));
    sessions.revoked(alice);
    assert.deepEqual(ended, ['revoked']);
    assert.equal(time.pending(), 0);
    time.advance(3600_000);
    assert.deepEqual(ended, ['revoked'], 'not ended twice');
  });

  it('a session that closed by itself is forgotten, and so is its timer once the last one closed', () => {
    const time = fakeTime();
    const sessions = new Sessions(time.now, time.schedule);
    const alice = identity(60_000, time.now());
    const ended: string[] = [];
    const closeFirst = sessions.track(alice, () => ended.push('first'));
    const closeSecond = sessions.track(alice, () => ended.push('second'));
    closeFirst();
    time.advance(60_000);
    assert.deepEqual(ended, ['second']);
    closeSecond();
    assert.equal(sessions.size, 0);
    const later = identity(10_000, time.now());
    sessions.track(later, () => ended.push('later'))();
    assert.equal(time.pending(), 0, 'the timer went with the last session');
  });

  it('an expiry beyond what a Node timer holds is looked at again, not fired early', () => {
    const time = fakeTime();
    const sessions = new Sessions(time.now, time.schedule);
    const longLived = identity(40 * 86_400_000, time.now());
    const ended: string[] = [];
    sessions.track(longLived, (r) => ended.push(r));
    time.advance(2 ** 31);
    assert.deepEqual(ended, []);
    time.advance(40 * 86_400_000);
    assert.deepEqual(ended, ['expired']);
  });
});
