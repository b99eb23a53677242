import assert from 'node:assert/strict';
import http from 'node:http';
import { gatewayForSuite } from '../helpers/gateway.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';

/**
 * Every connection is bounded from accept (issue 31): a first byte within listen.firstByteTimeoutSeconds, a complete
 * head within listen.headersTimeoutSeconds, an idle kept-alive connection closed after listen.idleTimeoutSeconds; and
 * nothing is cut once a response or an upgraded session has started. The bounds are set short here; the tests wait
 * for what happens (a close, an answer), never for a time.
 */
for (const tls of [false, true]) {
  describe(`connection bounds before and between requests (${tls ? 'HTTPS' : 'plain HTTP'})`, function () {
    this.timeout(20_000);
    const world = gatewayForSuite({ tls, listenYaml: '  firstByteTimeoutSeconds: 0.3\n  headersTimeoutSeconds: 0.8\n  idleTimeoutSeconds: 0.5' });

    it('a connection that sends nothing is closed, while a watch and an exec session opened before go on', async () => {
      const watch = await RawConnection.open(world.gw.port, tls);
      watch.write(requestHead('GET', '/k8s/watch', [['X-Auth-Token', 'alice-token']]));
      await watch.until((t) => t.includes('ADDED'));
      const exec = await RawConnection.open(world.gw.port, tls);
      exec.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/p/exec', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
      await exec.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));

      const silent = await RawConnection.open(world.gw.port, tls);
      const answer = await silent.untilEnded();
      assert.equal(answer, '', 'nothing is answered to a connection that asked nothing');

      // Both long-lived exchanges outlived the silent connection's bound and every other bound here.
      assert.equal(watch.isEnded, false, 'the watch was cut');
      assert.equal(exec.isEnded, false, 'the exec session was cut');
      exec.write('ping');
      await exec.until((t) => t.includes('echo:ping'));
      watch.destroy();
      exec.destroy();
    });

    it('a connection that sent one byte gets 408 once its head is overdue; a request completed in time is served', async () => {
      const slow = await RawConnection.open(world.gw.port, tls);
      slow.write('G');
      const fine = await RawConnection.open(world.gw.port, tls);
      fine.write(requestHead('GET', '/k8s/api/v1/namespaces/os-alpha/pods', [['X-Auth-Token', 'alice-token'], ['Connection', 'close']]));
      assert.match(await fine.untilEnded(), /^HTTP\/1\.1 200 /);
      assert.match(await slow.untilEnded(), /^HTTP\/1\.1 408 [^]*the request's headers did not arrive within 0\.8 s/);
    });

    it("a first request sent with Expect: 100-continue is not cut when the first head's bound passes (a 408 was written into its stream)", async () => {
      const watch = await RawConnection.open(world.gw.port, tls);
      watch.write(requestHead('GET', '/k8s/watch', [['X-Auth-Token', 'alice-token'], ['Expect', '100-continue']]));
      await watch.until((t) => t.includes('ADDED'));
      // Opened after the watch: its 408 comes after the watch's own first-head bound has passed.
      const slow = await RawConnection.open(world.gw.port, tls);
      slow.write('G');
      assert.match(await slow.untilEnded(), /^HTTP\/1\.1 408 /);
      assert.equal(watch.isEnded, false, 'the watch was cut');
      assert.doesNotMatch(watch.text(), /408/);
      watch.destroy();
    });

    it('a kept-alive connection idle after its answer is closed', async () => {
      const kept = await RawConnection.open(world.gw.port, tls);
      kept.write(requestHead('GET', '/k8s/api/v1/namespaces/os-alpha/pods', [['X-Auth-Token', 'alice-token']]));
      await kept.until((t) => t.includes('"ok":true'));
      await kept.untilEnded();
    });

    it('open connections are counted in the metrics', async () => {
      const held = await RawConnection.open(world.gw.port, tls);
      const text = await world.gw.gateway.metrics.registry.getSingleMetricAsString('zun_gateway_open_connections');
      const count = Number(/^zun_gateway_open_connections (\d+)$/m.exec(text)?.[1]);
      assert.ok(count >= 1, text);
      held.destroy();
    });
  });
}

describe('Expect: 100-continue is answered once the caller is known', () => {
  const world = gatewayForSuite();

  const expecting = (token: string | undefined): Promise<{ informational: number[]; status: number }> =>
    new Promise((resolve, reject) => {
      const informational: number[] = [];
      const req = http.request(`${world.gw.url}/k8s/api/v1/namespaces/os-alpha/configmaps`, {
        method: 'POST',
        headers: { expect: '100-continue', 'content-type': 'application/json', 'content-length': '2', ...(token !== undefined ? { 'x-auth-token': token } : {}) },
      });
      req.on('information', (info) => informational.push(info.statusCode));
      req.on('continue', () => req.end('{}'));
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ informational, status: res.statusCode ?? 0 }));
      });
      req.on('error', reject);
    });

  it('without a token: the 401 comes without a 100 first, and no body is asked for', async () => {
    const r = await expecting(undefined);
    assert.equal(r.status, 401);
    assert.deepEqual(r.informational, []);
  });

  it('with a good token: 100, then the body goes on and the apiserver answers', async () => {
    const before = world.upstream.requests.length;
    const r = await expecting('alice-token');
    assert.deepEqual(r.informational, [100]);
    assert.equal(r.status, 200);
    assert.equal(world.upstream.requests.at(before)?.body.toString(), '{}');
  });
});

describe('sessions.idleTimeoutSeconds (off by default): an upgraded session idle that long is closed and audited so', function () {
  this.timeout(20_000);
  const world = gatewayForSuite({ extraYaml: 'sessions: {idleTimeoutSeconds: 0.3}' });

  it('a session that keeps talking stays; one that goes quiet is closed, its record says why', async () => {
    const exec = await RawConnection.open(world.gw.port);
    exec.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/p/exec', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1']]));
    await exec.until((t) => t.startsWith('HTTP/1.1 101') && t.includes('\r\n\r\n'));
    exec.write('one');
    await exec.until((t) => t.includes('echo:one'));
    await exec.untilEnded();
    const record = world.gw.audit.records.find((r) => r.kind === 'session' && r.path === '/k8s/api/v1/namespaces/os-alpha/pods/p/exec');
    assert.equal(record?.reason, 'session ended: idle');
  });
});
