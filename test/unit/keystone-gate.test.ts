import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeystoneClient } from '../../src/auth/keystone-client.js';
import { KeystoneGate } from '../../src/auth/keystone-gate.js';
import { Metrics } from '../../src/observability/metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Keystone stand-in answering each validation after `delayMs` (never, when undefined); counts calls in flight. */
async function slowKeystone(delayMs: number | undefined): Promise<{ url: string; maxInFlight: () => number; close: () => Promise<void> }> {
  let inFlight = 0;
  let max = 0;
  const server = http.createServer((req, res) => {
    inFlight += 1;
    max = Math.max(max, inFlight);
    res.on('close', () => (inFlight -= 1));
    if (delayMs === undefined) return;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json', 'x-subject-token': 'x' }).end('{}'), delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`,
    maxInFlight: () => max,
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
          await sleep(10);
          running -= 1;
        }),
      ),
    );
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(gate.queued, 0);
  });

  it('a call that cannot start within maxWaitMs fails with the busy error', async () => {
    const gate = new KeystoneGate(1, 50, (ms) => new Error(`busy after ${ms}`));
    const first = gate.run(() => sleep(300));
    await assert.rejects(gate.run(() => Promise.resolve()), /busy after 50/);
    await first;
    assert.equal(gate.queued, 0);
  });

  it('failWaiting tells every waiting call at once, and the gate keeps working', async () => {
    const gate = new KeystoneGate(1, 5000, () => new Error('busy'));
    const first = gate.run(() => sleep(100));
    const waiting = [gate.run(() => Promise.resolve(1)), gate.run(() => Promise.resolve(2))];
    gate.failWaiting(new Error('Keystone unreachable'));
    for (const w of waiting) await assert.rejects(w, /unreachable/);
    await first;
    assert.equal(await gate.run(() => Promise.resolve(3)), 3);
  });
});

/**
 * A Keystone whose workers answer every call after `delayMs`, but one worker hangs on the first call `hangs` picks
 * (it never answers it), as a uwsgi worker of the e2e Keystone did: the others keep answering.
 */
async function keystoneWithStuckWorker(
  delayMs: number,
  hangs: (req: http.IncomingMessage) => boolean,
): Promise<{ url: string; calls: (subject: string) => number; close: () => Promise<void> }> {
  const seen = new Map<string, number>();
  let hung = false;
  const server = http.createServer((req, res) => {
    const subject = String(req.headers['x-subject-token'] ?? req.method);
    seen.set(subject, (seen.get(subject) ?? 0) + 1);
    if (!hung && hangs(req)) {
      hung = true;
      return;
    }
    const status = req.method === 'POST' ? 201 : 200;
    setTimeout(() => res.writeHead(status, { 'content-type': 'application/json', 'x-subject-token': 'x' }).end('{}'), delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`,
    calls: (subject) => seen.get(subject) ?? 0,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('KeystoneClient when one Keystone worker hangs and the others answer', function () {
  this.timeout(10_000);

  it('the stuck validation is tried once more and succeeds, and the calls waiting meanwhile are not failed', async () => {
    const keystone = await keystoneWithStuckWorker(80, (req) => req.headers['x-subject-token'] === 'stuck');
    const metrics = new Metrics();
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 2, metrics });
    try {
      // Ten calls at 80 ms through the one free slot take longer than the stuck call's timeout: some are still
      // waiting at the gate when it times out.
      const outcomes = await Promise.allSettled([
        client.validateToken('service', 'stuck'),
        ...Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`)),
      ]);
      assert.deepEqual(
        outcomes.map((o) => (o.status === 'fulfilled' ? o.value.status : String(o.reason))),
        Array.from({ length: 11 }, () => 200),
      );
      assert.equal(keystone.calls('stuck'), 2, 'sent again once, after the first try timed out');
      const text = await metrics.registry.metrics();
      assert.match(text, /zun_gateway_keystone_retries_total\{operation="validate_token"\} 1/);
      assert.match(text, /zun_gateway_keystone_requests_total\{operation="validate_token",outcome="200"\} 11/);
    } finally {
      client.close();
      await keystone.close();
    }
  });

  it('a token issue (POST) that hangs is not sent again, and it does not fail the calls waiting behind it', async () => {
    const keystone = await keystoneWithStuckWorker(80, (req) => req.method === 'POST');
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 2 });
    try {
      const issue = client.authenticate({ method: 'password', username: 'u', password: 'p', userDomainName: 'Default' });
      const outcomes = await Promise.allSettled([issue, ...Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`))]);
      const [first, ...rest] = outcomes;
      assert.ok(first?.status === 'rejected' && first.reason instanceof GatewayError, 'the hung POST fails as unavailable');
      assert.equal(keystone.calls('POST'), 1, 'not sent twice');
      assert.ok(rest.every((o) => o.status === 'fulfilled' && o.value.status === 200), 'every validation waiting behind it answered');
    } finally {
      client.close();
      await keystone.close();
    }
  });
});

describe('KeystoneClient under a burst of new tokens', function () {
  this.timeout(10_000);

  it('keeps at most maxConcurrent calls at a slow Keystone, and every call succeeds although together they take longer than the timeout', async () => {
    const keystone = await slowKeystone(60);
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 300, maxConcurrent: 3 });
    try {
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => client.validateToken('service', `t${i}`)));
      assert.ok(answers.every((a) => a.status === 200));
      assert.equal(keystone.maxInFlight(), 3);
      assert.ok(Date.now() - started > 300, 'the burst took longer than one timeout, and nothing timed out');
    } finally {
      client.close();
      await keystone.close();
    }
  });

  it('when Keystone is silent, the waiting calls fail as soon as the first ones time out, not one timeout after another', async () => {
    const keystone = await slowKeystone(undefined);
    const client = new KeystoneClient({ authUrl: keystone.url, timeoutMs: 200, maxConcurrent: 2 });
    try {
      const started = Date.now();
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.validateToken('service', `t${i}`)));
      const took = Date.now() - started;
      assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof GatewayError && o.reason.code === 'keystone_unavailable'));
      assert.ok(took < 700, `all ten failed after ${took} ms (five timeouts in a row would be 1000 ms)`);
      assert.equal(keystone.maxInFlight(), 2);
    } finally {
      client.close();
      await keystone.close();
    }
  });
});
