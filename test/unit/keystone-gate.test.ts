import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mock } from 'node:test';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { KeystoneGate } from '../../src/auth/keystone-gate.js';
import { Metrics } from '../../src/observability/metrics.js';
import { Changes, ManualDeadlines } from '../helpers/changes.js';

/** A promise the test settles when it wants. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The calls' outcomes as they settle: the status answered, or the error's code. */
function settling<T extends { status: number }>(calls: ReadonlyArray<Promise<T>>, changes = new Changes()): { outcomes: Array<number | string | undefined>; changes: Changes; settled: () => number } {
  const outcomes: Array<number | string | undefined> = calls.map(() => undefined);
  calls.forEach((call, i) => {
    call.then(
      (res) => (outcomes[i] = res.status),
      (err: unknown) => (outcomes[i] = err instanceof GatewayError ? err.code : String(err)),
    ).finally(() => changes.notify());
  });
  return { outcomes, changes, settled: () => outcomes.filter((o) => o !== undefined).length };
}

/**
 * A Keystone stand-in that holds every call until the test answers it (200, or 201 to a POST), except the first call
 * `hangs` picks, which it never answers (as a stuck uwsgi worker of the e2e Keystone did). Counts calls in flight.
 */
async function heldKeystone(hangs: (req: http.IncomingMessage) => boolean = () => false) {
  const seen = new Map<string, number>();
  const held: Array<() => void> = [];
  const changes = new Changes();
  let inFlight = 0;
  let max = 0;
  let hung = false;
  let answered = 0;
  const server = http.createServer((req, res) => {
    inFlight += 1;
    max = Math.max(max, inFlight);
    res.on('close', () => {
      inFlight -= 1;
      changes.notify();
    });
    const subject = String(req.headers['x-subject-token'] ?? req.method);
    seen.set(subject, (seen.get(subject) ?? 0) + 1);
    if (!hung && hangs(req)) hung = true;
    else held.push(() => res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'x-subject-token': 'x' }).end('{}'));
    changes.notify();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`,
    changes,
    calls: (subject: string) => seen.get(subject) ?? 0,
    held: () => held.length,
    answered: () => answered,
    maxInFlight: () => max,
    /** Answers every call held so far. */
    answerAll: () => {
      for (const answer of held.splice(0)) {
        answered += 1;
        answer();
      }
    },
    answerOne: () => {
      answered += 1;
      held.shift()?.();
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('KeystoneGate: how many calls are at Keystone at once', () => {
  it('runs at most `limit` tasks at once, the others in arrival order', async () => {
    const gate = new KeystoneGate(2, 5000, () => new Error('busy'));
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        gate.run(async () => {
          running += 1;
          most = Math.max(most, running);
          order.push(i);
          await new Promise((r) => setImmediate(r));
          running -= 1;
        }),
      ),
    );
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(gate.queued, 0);
  });

  it('a call that cannot start within maxWaitMs fails with the busy error', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const gate = new KeystoneGate(1, 50, (ms) => new Error(`busy after ${ms}`));
      const first = deferred();
      const running = gate.run(() => first.promise);
      let outcome = 'waiting';
      const second = gate.run(() => Promise.resolve()).then(
        () => (outcome = 'ran'),
        (err: Error) => (outcome = err.message),
      );
      mock.timers.tick(49);
      await new Promise((r) => setImmediate(r));
      assert.equal(outcome, 'waiting', 'gave up before maxWaitMs');
      mock.timers.tick(1);
      await new Promise((r) => setImmediate(r));
      assert.equal(outcome, 'busy after 50');
      await second;
      assert.equal(gate.queued, 0);
      first.resolve();
      await running;
    } finally {
      mock.timers.reset();
    }
  });

  it('failWaiting tells every waiting call at once, and the gate keeps working', async () => {
    const gate = new KeystoneGate(1, 5000, () => new Error('busy'));
    const first = deferred();
    const running = gate.run(() => first.promise);
    const waiting = [gate.run(() => Promise.resolve(1)), gate.run(() => Promise.resolve(2))];
    gate.failWaiting(new Error('Keystone unreachable'));
    for (const w of waiting) await assert.rejects(w, /unreachable/);
    first.resolve();
    await running;
    assert.equal(await gate.run(() => Promise.resolve(3)), 3);
  });
});

// The calls below wait at the gate for as long as the test takes: its own limit (maxQueueWaitMs) is not under test.
const PATIENT = 600_000;

describe('KeystoneClient when one Keystone worker hangs and the others answer', () => {
  it('the stuck validation is tried once more and succeeds, and the calls waiting meanwhile are not failed', async () => {
    const keystone = await heldKeystone((req) => req.headers['x-subject-token'] === 'stuck');
    const deadlines = new ManualDeadlines();
    const metrics = new Metrics();
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 2, maxQueueWaitMs: PATIENT, metrics, deadline: deadlines.signal });
    try {
      const calls = settling([client.validateToken('service', 'stuck'), ...Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`))]);
      // The stuck call and t0 are at Keystone, nine wait at the gate. Keystone answers t0; t1 takes its place.
      await keystone.changes.until(() => keystone.calls('stuck') === 1 && keystone.held() === 1);
      keystone.answerOne();
      await keystone.changes.until(() => keystone.calls('t1') === 1);
      // The stuck call's deadline passes while eight calls still wait at the gate, and Keystone answered one since.
      deadlines.expire(0);
      while (calls.settled() < 11) {
        keystone.answerAll();
        await Promise.race([keystone.changes.until(() => keystone.held() > 0), calls.changes.until(() => calls.settled() === 11)]);
      }
      assert.deepEqual(calls.outcomes, Array.from({ length: 11 }, () => 200));
      assert.equal(keystone.calls('stuck'), 2, 'sent again once, after the first try timed out');
      assert.equal(deadlines.expired, 1, 'no other call timed out');
      const text = await metrics.registry.metrics();
      assert.match(text, /zun_gateway_keystone_retries_total\{operation="validate_token"\} 1/);
      assert.match(text, /zun_gateway_keystone_requests_total\{operation="validate_token",outcome="200"\} 11/);
    } finally {
      client.close();
      await keystone.close();
    }
  });

  it('a token issue (POST) that hangs is not sent again, and it does not fail the calls waiting behind it', async () => {
    const keystone = await heldKeystone((req) => req.method === 'POST');
    const deadlines = new ManualDeadlines();
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 2, maxQueueWaitMs: PATIENT, deadline: deadlines.signal });
    try {
      const issue = client.authenticate({ method: 'password', username: 'u', password: 'p', userDomainName: 'Default' });
      const calls = settling([issue, ...Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`))]);
      await keystone.changes.until(() => keystone.calls('POST') === 1 && keystone.held() === 1);
      keystone.answerOne();
      await keystone.changes.until(() => keystone.calls('t1') === 1);
      deadlines.expire(0);
      while (calls.settled() < 11) {
        keystone.answerAll();
        await Promise.race([keystone.changes.until(() => keystone.held() > 0), calls.changes.until(() => calls.settled() === 11)]);
      }
      const [first, ...rest] = calls.outcomes;
      assert.equal(first, 'keystone_unavailable', 'the hung POST fails as unavailable');
      assert.equal(keystone.calls('POST'), 1, 'not sent twice');
      assert.deepEqual(rest, Array.from({ length: 10 }, () => 200), 'every validation waiting behind it answered');
    } finally {
      client.close();
      await keystone.close();
    }
  });
});

describe('KeystoneClient under a burst of new tokens', () => {
  it('keeps at most maxConcurrent calls at a slow Keystone, and every call succeeds although together they take longer than the timeout', async () => {
    const keystone = await heldKeystone();
    const deadlines = new ManualDeadlines();
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 3, maxQueueWaitMs: PATIENT, deadline: deadlines.signal });
    try {
      // One Changes for both sides: the test looks again whenever a call arrives at Keystone or settles.
      const calls = settling(Array.from({ length: 30 }, (_, i) => client.validateToken('service', `t${i}`)), keystone.changes);
      // Keystone answers the three calls it has every 60 ms: ten rounds, 600 ms in all, twice the timeout.
      for (;;) {
        await keystone.changes.until(() => calls.settled() === 30 || keystone.held() >= Math.min(3, 30 - calls.settled()));
        if (calls.settled() === 30) break;
        deadlines.advance(60);
        keystone.answerAll();
      }
      assert.deepEqual(calls.outcomes, Array.from({ length: 30 }, () => 200));
      assert.equal(keystone.maxInFlight(), 3);
      // A call timed while it waited its turn would have failed, or been sent again.
      assert.deepEqual(Array.from({ length: 30 }, (_, i) => keystone.calls(`t${i}`)), Array.from({ length: 30 }, () => 1));
    } finally {
      client.close();
      await keystone.close();
    }
  });

  it('when Keystone is silent, the waiting calls fail as soon as the first ones time out, not one timeout after another', async () => {
    const keystone = await heldKeystone();
    const deadlines = new ManualDeadlines();
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 200, maxConcurrent: 2, maxQueueWaitMs: PATIENT, deadline: deadlines.signal });
    try {
      const calls = settling(Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`)));
      await keystone.changes.until(() => keystone.held() === 2);
      // One timeout: that call fails, and so does every call waiting at the gate behind the ones at Keystone.
      const atKeystone = (): number => deadlines.made.length - deadlines.expired;
      deadlines.expire(0);
      await calls.changes.until(() => calls.settled() + atKeystone() === 10);
      assert.ok(calls.outcomes.filter((o) => o !== undefined).every((o) => o === 'keystone_unavailable'), JSON.stringify(calls.outcomes));
      assert.ok(atKeystone() <= 2, `${atKeystone()} calls at Keystone`);
      assert.ok(calls.settled() >= 8, `only ${calls.settled()} of ten failed after one timeout`);
      // The calls still at Keystone have their own time; once it passes, every call has failed.
      while (atKeystone() > 0) deadlines.expire(deadlines.made.findIndex((d) => !d.controller.signal.aborted));
      await calls.changes.until(() => calls.settled() === 10);
      assert.deepEqual(calls.outcomes, Array.from({ length: 10 }, () => 'keystone_unavailable'));
      assert.ok(deadlines.made.length <= 3, `${deadlines.made.length} calls were sent: the waiting ones were not`);
      assert.equal(keystone.maxInFlight(), 2);
    } finally {
      client.close();
      await keystone.close();
    }
  });
});
