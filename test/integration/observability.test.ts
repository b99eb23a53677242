import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { sample } from '../helpers/prometheus-text.js';
import { RawConnection, requestHead } from '../helpers/raw-client.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}


describe('observability: audit trail, access log and metrics (in-process gateway, recording upstream, Keystone double)', () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let metricsUrl: string;
  const scrape = async (): Promise<string> => {
    const res = await send(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    return res.body;
  };

  before(async () => {
    keystone = await new KeystoneDouble().start();
    upstream = await new RecordingUpstream().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    keystone.register('unscoped-token', { user: 'alice', project: null });
    gw = await startTestGateway({
      keystoneUrl: keystone.url,
      upstreamUrl: upstream.url,
      captureLogs: true,
      extraYaml: 'metrics: {host: 127.0.0.1, port: 0}',
    });
    const at = gw.gateway.metricsAddress();
    assert.ok(at !== undefined, 'the metrics listener is up');
    metricsUrl = `http://127.0.0.1:${at.port}/metrics`;
  });

  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
  });

  describe('audit records', () => {
    it('a forwarded request: who, project, namespace, status, bytes both ways, upstream latency, client; query secrets removed', async () => {
      const body = randomBytes(3000);
      const res = await send(`${gw.url}/k8s/api/v1/namespaces/os-alpha/configmaps?dryRun=All&token=leak-me`, {
        method: 'POST',
        headers: { 'x-auth-token': 'alice-token', 'content-type': 'application/octet-stream', 'content-length': body.length },
        body,
      });
      assert.equal(res.status, 200);
      const r = await gw.audit.waitFor((x) => x.method === 'POST' && x.path.includes('/configmaps'));
      assert.equal(r.kind, 'request');
      assert.equal(r.coe, 'k8s');
      assert.equal(r.status, 200);
      assert.equal(r.path, '/k8s/api/v1/namespaces/os-alpha/configmaps?dryRun=All&token=REDACTED');
      assert.equal(r.namespace, 'os-alpha');
      assert.deepEqual(r.user, { id: 'alice-id', name: 'alice', domainId: 'default' });
      assert.deepEqual(r.project, { id: 'p-alpha', name: 'alpha', domainId: 'default' });
      assert.equal(r.bytesIn, 3000);
      assert.equal(r.bytesOut, Buffer.byteLength(res.body));
      assert.equal(typeof r.upstreamLatencyMs, 'number');
      assert.ok(r.durationMs >= (r.upstreamLatencyMs as number));
      assert.equal(r.client, '127.0.0.1');
      assert.match(r.requestId, /^[0-9a-f-]{36}$/);
      assert.equal(r.reason, undefined);
      assert.ok(!JSON.stringify(gw.audit.records).includes('leak-me'));
    });

    it('denied at the gateway: 401 without a token and 403 for an unscoped token are recorded with the reason, never forwarded', async () => {
      const before = upstream.requests.length;
      assert.equal((await send(`${gw.url}/k8s/api/v1/namespaces/os-beta/secrets`)).status, 401);
      assert.equal((await send(`${gw.url}/k8s/api/v1/pods?x=unscoped`, { headers: { 'x-auth-token': 'unscoped-token' } })).status, 403);
      const denied = await gw.audit.waitFor((x) => x.status === 401 && x.path === '/k8s/api/v1/namespaces/os-beta/secrets');
      assert.equal(denied.user, undefined);
      assert.equal(denied.namespace, undefined, 'nothing is claimed about a request that was not authenticated');
      assert.match(String(denied.reason), /token/);
      assert.equal(denied.upstreamLatencyMs, undefined);
      assert.ok(denied.bytesOut > 50, 'the size of the Status the client got');
      const forbidden = await gw.audit.waitFor((x) => x.status === 403 && x.path === '/k8s/api/v1/pods?x=unscoped');
      assert.match(String(forbidden.reason), /project/);
      assert.equal(upstream.requests.length, before);
    });

    it('a path refused before routing is recorded too, as the gateway\'s own refusal', async () => {
      assert.equal((await send(`${gw.url}/k8s/api%2fv1`, { headers: { 'x-auth-token': 'alice-token' } })).status, 400);
      const r = await gw.audit.waitFor((x) => x.path === '/k8s/api%2fv1');
      assert.equal(r.coe, 'gateway');
      assert.equal(r.status, 400);
      assert.match(String(r.reason), /path/);
    });

    it('an upgraded session: one record at its end with status 101, its duration and the bytes both ways', async () => {
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('POST', '/k8s/api/v1/namespaces/os-alpha/pods/web/exec?command=sh', [
        ['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'SPDY/3.1'],
      ]));
      await c.until((t) => t.includes('\r\n\r\n'));
      const during = await scrape();
      assert.equal(sample(during, 'zun_gateway_upgraded_connections', { coe: 'k8s' }), 1);
      c.write('ping-12345');
      await c.until((t) => t.includes('echo:ping-12345'));
      assert.equal(gw.audit.records.find((x) => x.kind === 'session'), undefined, 'the session record comes at its end');
      c.endWrite();
      await c.untilEnded();
      const r = await gw.audit.waitFor((x) => x.kind === 'session');
      assert.equal(r.status, 101);
      assert.equal(r.namespace, 'os-alpha');
      assert.equal(r.bytesIn, 'ping-12345'.length);
      assert.equal(r.bytesOut, 'echo:ping-12345'.length + 'bye'.length);
      assert.equal(r.user?.name, 'alice');
      // Counted down as the record is written: the record has come, so has the count.
      assert.equal(sample(await scrape(), 'zun_gateway_upgraded_connections', { coe: 'k8s' }), 0);
    });

    it('an upgrade the upstream refuses is one request record with the upstream status and its body size', async () => {
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/refuse/exec', [['X-Auth-Token', 'alice-token'], ['Connection', 'Upgrade'], ['Upgrade', 'websocket']]));
      await c.untilEnded();
      const r = await gw.audit.waitFor((x) => x.path === '/k8s/refuse/exec');
      assert.equal(r.kind, 'request');
      assert.equal(r.status, 400);
      assert.equal(r.bytesOut, '{"kind":"Status","code":400,"message":"upgrade request required"}'.length);
    });

    it('a client that leaves before the answer is recorded as 499, not as a success', async () => {
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/hang?left=1', [['X-Auth-Token', 'alice-token']]));
      await upstream.arrival((url) => url === '/hang?left=1');
      c.destroy();
      const r = await gw.audit.waitFor((x) => x.path === '/k8s/hang?left=1');
      assert.equal(r.status, 499);
    });

    it('an unreachable upstream: 502 recorded with the reason, counted as an upstream error', async () => {
      const dead = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: 'http://127.0.0.1:1', extraYaml: 'metrics: {port: 0}' });
      try {
        assert.equal((await send(`${dead.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } })).status, 502);
        const r = await dead.audit.waitFor((x) => x.path === '/k8s/api');
        assert.equal(r.status, 502);
        assert.match(String(r.reason), /ECONNREFUSED/);
        const text = await send(`http://127.0.0.1:${dead.gateway.metricsAddress()?.port}/metrics`);
        assert.equal(sample(text.body, 'zun_gateway_upstream_errors_total', { coe: 'k8s', code: 'ECONNREFUSED' }), 1);
      } finally {
        await dead.stop();
      }
    });
  });

  describe('metrics', () => {
    it('are served only on their own listener: the tenant-facing port has no /metrics', async () => {
      assert.equal((await send(`${gw.url}/metrics`)).status, 404);
      assert.equal((await send(metricsUrl.replace('/metrics', '/other'))).status, 404);
      assert.match(await scrape(), /# TYPE zun_gateway_requests_total counter/);
    });

    it('count requests by COE, method and code, with latency histograms', async () => {
      const before = await scrape();
      const ok = sample(before, 'zun_gateway_requests_total', { coe: 'k8s', method: 'GET', code: '200' });
      const denied = sample(before, 'zun_gateway_requests_total', { coe: 'k8s', method: 'GET', code: '401' });
      const timed = sample(before, 'zun_gateway_request_duration_seconds_count', { coe: 'k8s', method: 'GET' });
      const upstreamTimed = sample(before, 'zun_gateway_upstream_latency_seconds_count', { coe: 'k8s' });
      const records = gw.audit.records.length;
      await send(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } });
      await send(`${gw.url}/k8s/version`, { headers: { 'x-auth-token': 'alice-token' } });
      await send(`${gw.url}/k8s/api`);
      // Each exchange is counted as its record is written, at its end (just after the client has its answer).
      await gw.audit.waitFor(() => gw.audit.records.length >= records + 3);
      const after = await scrape();
      assert.equal(sample(after, 'zun_gateway_requests_total', { coe: 'k8s', method: 'GET', code: '200' }) - ok, 2);
      assert.equal(sample(after, 'zun_gateway_requests_total', { coe: 'k8s', method: 'GET', code: '401' }) - denied, 1);
      assert.equal(sample(after, 'zun_gateway_request_duration_seconds_count', { coe: 'k8s', method: 'GET' }) - timed, 3);
      assert.equal(sample(after, 'zun_gateway_upstream_latency_seconds_count', { coe: 'k8s' }) - upstreamTimed, 2);
    });

    it('count Keystone calls and token cache hits and misses, and report the cache size', async () => {
      keystone.register('fresh-token', { user: 'carol', project: { id: 'p-alpha', name: 'alpha' } });
      const before = await scrape();
      const validations = sample(before, 'zun_gateway_keystone_requests_total', { operation: 'validate_token', outcome: '200' });
      const misses = sample(before, 'zun_gateway_token_cache_lookups_total', { result: 'miss' });
      const hits = sample(before, 'zun_gateway_token_cache_lookups_total', { result: 'hit' });
      const negative = sample(before, 'zun_gateway_token_cache_lookups_total', { result: 'negative_hit' });
      for (let i = 0; i < 3; i += 1) await send(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'fresh-token' } });
      for (let i = 0; i < 2; i += 1) await send(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': 'no-such-token' } });
      const after = await scrape();
      assert.equal(sample(after, 'zun_gateway_keystone_requests_total', { operation: 'validate_token', outcome: '200' }) - validations, 1);
      assert.equal(sample(after, 'zun_gateway_keystone_requests_total', { operation: 'validate_token', outcome: '404' }) >= 1, true);
      assert.equal(sample(after, 'zun_gateway_token_cache_lookups_total', { result: 'miss' }) - misses, 2);
      assert.equal(sample(after, 'zun_gateway_token_cache_lookups_total', { result: 'hit' }) - hits, 2);
      assert.equal(sample(after, 'zun_gateway_token_cache_lookups_total', { result: 'negative_hit' }) - negative, 1);
      assert.ok(sample(after, 'zun_gateway_token_cache_entries', { cache: 'valid' }) >= 2);
      assert.ok(sample(after, 'zun_gateway_token_cache_entries', { cache: 'refused' }) >= 1);
      assert.ok(sample(after, 'zun_gateway_keystone_request_duration_seconds_count', { operation: 'validate_token' }) >= 2);
      assert.ok(sample(after, 'zun_gateway_keystone_requests_total', { operation: 'issue_token', outcome: '201' }) >= 1, 'the service token');
    });

    it('Keystone unreachable counts as a Keystone error', async () => {
      const down = await startTestGateway({ keystoneUrl: 'http://127.0.0.1:1/v3', upstreamUrl: upstream.url, extraYaml: 'metrics: {port: 0}' });
      try {
        assert.equal((await send(`${down.url}/k8s/api`, { headers: { 'x-auth-token': 'alice-token' } })).status, 503);
        const text = (await send(`http://127.0.0.1:${down.gateway.metricsAddress()?.port}/metrics`)).body;
        assert.ok(sample(text, 'zun_gateway_keystone_errors_total', { operation: 'issue_token' }) >= 1);
        assert.ok(sample(text, 'zun_gateway_keystone_requests_total', { operation: 'issue_token', outcome: 'error' }) >= 1);
      } finally {
        await down.stop();
      }
    });

    it('an open watch is counted while it lasts and kept out of the request latency histogram', async () => {
      const timed = sample(await scrape(), 'zun_gateway_request_duration_seconds_count', { coe: 'k8s', method: 'GET' });
      const done = new Promise<void>((resolve, reject) => {
        const req = http.get(`${gw.url}/k8s/watch?watch=true`, { headers: { 'x-auth-token': 'alice-token' } }, (res) => {
          res.once('data', () => {
            void scrape().then((text) => {
              try {
                assert.equal(sample(text, 'zun_gateway_open_watches', { coe: 'k8s' }), 1);
              } catch (err) {
                reject(err as Error);
              }
              req.destroy();
              resolve();
            }, reject);
          });
        });
        req.on('error', () => undefined);
      });
      const records = gw.audit.records.length;
      await done;
      await gw.audit.waitFor((x) => x.path === '/k8s/watch?watch=true' && gw.audit.records.indexOf(x) >= records);
      const after = await scrape();
      assert.equal(sample(after, 'zun_gateway_open_watches', { coe: 'k8s' }), 0);
      assert.equal(sample(after, 'zun_gateway_request_duration_seconds_count', { coe: 'k8s', method: 'GET' }), timed);
    });

    it('include the process metrics (memory, CPU, event loop lag)', async () => {
      const text = await scrape();
      assert.match(text, /^zun_gateway_process_resident_memory_bytes \d+/m);
      assert.match(text, /^zun_gateway_nodejs_eventloop_lag_seconds /m);
    });
  });

  describe('logs', () => {
    it('at debug level, one JSON line per request with its request id, method, path without query, status and user', async () => {
      await send(`${gw.url}/k8s/api/v1/namespaces/os-alpha/pods?labelSelector=a%3Db`, { headers: { 'x-auth-token': 'alice-token' } });
      const r = await gw.audit.waitFor((x) => x.path.startsWith('/k8s/api/v1/namespaces/os-alpha/pods?labelSelector'));
      const lines = gw.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === r.requestId);
      assert.equal(lines.length, 1);
      const line = lines[0] as Record<string, unknown>;
      assert.equal(line.msg, 'request');
      assert.equal(line.path, '/k8s/api/v1/namespaces/os-alpha/pods');
      assert.equal(line.status, 200);
      assert.equal(line.user, 'alice');
      assert.equal(line.level, 20, 'the audit trail is the per-request record; the access-log line is debug');
    });

    it('never contain a token or password, whichever way it was sent', async () => {
      const secrets = {
        header: `hdr-${randomBytes(8).toString('hex')}`,
        bearer: `brr-${randomBytes(8).toString('hex')}`,
        query: `qry-${randomBytes(8).toString('hex')}`,
        subprotocol: `sub-${randomBytes(8).toString('hex')}`,
      };
      keystone.register(secrets.header, { user: 'dave', project: { id: 'p-alpha', name: 'alpha' } });
      await send(`${gw.url}/k8s/api`, { headers: { 'x-auth-token': secrets.header } });
      await send(`${gw.url}/k8s/api`, { headers: { authorization: `Bearer ${secrets.bearer}` } });
      await send(`${gw.url}/k8s/api?access_token=${secrets.query}`, { headers: { 'x-auth-token': secrets.header } });
      const records = gw.audit.records.length;
      const c = await RawConnection.open(gw.port);
      c.write(requestHead('GET', '/k8s/api/v1/namespaces/x/pods/p/exec', [
        ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13'],
        ['Sec-WebSocket-Protocol', `v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.${Buffer.from(secrets.subprotocol).toString('base64url')}`],
      ]));
      await c.untilEnded();
      // Its record and its log line are written together, at its end.
      await gw.audit.waitFor((x) => x.path === '/k8s/api/v1/namespaces/x/pods/p/exec' && gw.audit.records.indexOf(x) >= records);
      const everything = `${gw.logs.text}\n${JSON.stringify(gw.audit.records)}`;
      assert.ok(gw.logs.lines.length > 5, 'the gateway did log');
      for (const [how, secret] of Object.entries(secrets)) {
        assert.ok(!everything.includes(secret), `the ${how} token appears in the logs`);
      }
      assert.ok(!everything.includes(Buffer.from(secrets.subprotocol).toString('base64url')));
      assert.ok(!everything.includes('service-password'), "the gateway's own password appears in the logs");
      // The gateway's own credentials are worth more than any user's: its Keystone token (the double issues
      // service-token-<n>) validates every token, its apiserver credential (the kubeconfig's) can impersonate anyone.
      assert.ok(keystone.issueCalls > 0, 'the gateway did get its own Keystone token');
      assert.ok(!everything.includes('service-token-'), "the gateway's own Keystone token appears in the logs");
      assert.ok(!everything.includes('gateway-sa-token'), "the gateway's apiserver credential appears in the logs");

    });
  });
});
