import assert from 'node:assert/strict';
import { mock } from 'node:test';
import { OWNER_LABEL } from '../../src/docker/ownership.js';
import { FakeDockerEngine } from '../helpers/fake-docker-engine.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RawConnection } from '../helpers/raw-client.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';
import { REFUSED_BODY_LINGER_MS } from '../../src/routes/respond.js';

/** Whether `text` holds a whole answer: its head and as many body bytes as its Content-Length says. */
function wholeAnswer(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  const length = end < 0 ? null : /\r\ncontent-length: *(\d+)\r\n/i.exec(text.slice(0, end + 2));
  return length !== null && length !== undefined && Buffer.byteLength(text.slice(end + 4)) >= Number(length[1]);
}

/** Sends raw bytes and returns the status line's code and the whole answer (or what came before the connection ended). */
async function raw(port: number, bytes: string): Promise<{ status: number; text: string }> {
  const c = await RawConnection.open(port);
  c.write(bytes);
  const text = await c.until((t) => wholeAnswer(t) || c.isEnded);
  c.socket.destroy();
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { status: m === null ? 0 : Number(m[1]), text };
}

/**
 * Hostile and malformed requests (issue 8): each is refused with a clear 4xx, and nothing that should not reach an
 * upstream does. The Kubernetes side goes to a recording upstream, the Docker side to a fake engine.
 */
describe('hostile requests: each gets a clear 4xx and nothing is forwarded', function () {
  this.timeout(20_000);
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let engine: FakeDockerEngine;
  let gw: TestGateway;
  let port: number;
  const token = 'alice-token';

  before(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.register(token, { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    keystone.register('bob-token', { user: 'bob', project: { id: 'p-beta', name: 'beta' }, roles: ['member'] });
    upstream = await new RecordingUpstream().start();
    engine = await new FakeDockerEngine().start();
    engine.containers.push({ id: 'a1b2c3d4e5f6', name: 'alice-web', labels: { [OWNER_LABEL]: 'p-alpha' } });
    gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, extraYaml: `docker: {host: "unix://${engine.socketPath}", maxBodyBytes: 4096}` });
    port = gw.port;
  });

  after(async () => {
    await gw.stop();
    await upstream.stop();
    await engine.stop();
    await keystone.stop();
  });

  const k8sGet = (extraHeaders: string, path = '/k8s/api/v1/namespaces/a/configmaps'): string =>
    `GET ${path} HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\n${extraHeaders}Connection: close\r\n\r\n`;

  const cases: ReadonlyArray<{ name: string; bytes: () => string; status: number; says: RegExp }> = [
    { name: 'headers over the limit (16 KB)', bytes: () => k8sGet(`X-Filler: ${'a'.repeat(20_000)}\r\n`), status: 431, says: /headers too large/ },
    {
      name: 'Content-Length together with Transfer-Encoding (request smuggling)',
      bytes: () => `POST /k8s/api/v1/namespaces/a/configmaps HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      status: 400,
      says: /Content-Length/,
    },
    {
      name: 'two different Content-Length headers',
      bytes: () => `POST /k8s/api/v1/namespaces/a/configmaps HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}`,
      status: 400,
      says: /Content-Length/,
    },
    { name: 'an obs-folded header line', bytes: () => k8sGet('X-Folded: a\r\n  continued\r\n'), status: 400, says: /header/ },
    { name: 'an unknown method', bytes: () => `BREW /k8s/api HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\n\r\n`, status: 400, says: /method/ },
    { name: 'an empty token', bytes: () => `GET /k8s/api HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: \r\nConnection: close\r\n\r\n`, status: 401, says: /token/i },
    { name: 'a huge token', bytes: () => `GET /k8s/api HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${'t'.repeat(12_000)}\r\nConnection: close\r\n\r\n`, status: 401, says: /token/i },
    { name: 'a non-ASCII token', bytes: () => `GET /k8s/api HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tok\u00e9n\r\nConnection: close\r\n\r\n`, status: 401, says: /token/i },
    { name: 'two Authorization headers', bytes: () => k8sGet('Authorization: Bearer a\r\nAuthorization: Bearer b\r\n', '/k8s/api'), status: 400, says: /Authorization|token/ },
    { name: 'X-Auth-Token and Authorization disagreeing', bytes: () => k8sGet('Authorization: Bearer bob-token\r\n', '/k8s/api'), status: 400, says: /token/ },
    { name: 'a path climbing out of /k8s (/k8s/%2e%2e/docker)', bytes: () => k8sGet('', '/k8s/%2e%2e/docker/v1.41/containers/json'), status: 400, says: /\.\./ },
    { name: 'a look-alike mount (/k8sfoo)', bytes: () => k8sGet('', '/k8sfoo/api'), status: 404, says: /"no such endpoint: GET \/k8sfoo\/api; the gateway serves \/k8s\/\.\.\., \/docker\/\.\.\."/ },
    { name: 'a raw space in the path', bytes: () => k8sGet('', '/k8s/api/v1/a%20b/c d'), status: 400, says: /"malformed HTTP request: Expected HTTP\// },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.status}, nothing forwarded`, async () => {
      const before = upstream.requests.length;
      const engineBefore = engine.requests.length;
      const answer = await raw(port, c.bytes());
      assert.equal(answer.status, c.status, answer.text.slice(0, 300));
      assert.match(answer.text.split('\r\n\r\n').slice(1).join(''), c.says);
      assert.equal(upstream.requests.length, before, 'the apiserver saw the request');
      assert.equal(engine.requests.length, engineBefore, 'the engine saw the request');
    });
  }

  const dockerPost = (path: string, body: string, length = Buffer.byteLength(body)): string =>
    `POST /docker/v1.41${path} HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${body}`;

  for (const [name, bytes, status, says] of [
    ['invalid JSON to container create', () => dockerPost('/containers/create', '{"Image": "busybox",'), 400, /not valid JSON/],
    ['a JSON array instead of an object', () => dockerPost('/containers/create', '["busybox"]'), 400, /JSON object/],
    ['case-variant duplicate keys', () => dockerPost('/containers/create', '{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}'), 400, /both "Privileged" and "privileged"/],
    ['a body over docker.maxBodyBytes', () => dockerPost('/containers/create', `{"Image":"busybox","Env":["${'x'.repeat(8000)}"]}`), 413, /^the request body is larger than 4096 bytes$/],
    ['a method the Docker API does not have there', () => `PROPFIND /docker/v1.41/containers/json HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: ${token}\r\nConnection: close\r\n\r\n`, 403, /PROPFIND/],
  ] as const) {
    it(`Docker: ${name}: ${status} with a {"message"}, nothing forwarded`, async () => {
      const before = engine.requests.length;
      const answer = await raw(port, bytes());
      assert.equal(answer.status, status, answer.text.slice(0, 300));
      const body = JSON.parse(answer.text.split('\r\n\r\n').slice(1).join('')) as { message: string };
      assert.match(body.message, says);
      assert.equal(engine.requests.length, before, 'the engine saw the request');
    });
  }

  /**
   * Sends `head` with a huge Content-Length and one byte of body, waits for an answer matching `answered`, keeps
   * dripping, and checks the connection is closed exactly REFUSED_BODY_LINGER_MS after the answer. The linger runs on
   * setTimeout: Node's mock timers move it (nothing else in this exchange waits on a timer).
   */
  async function closedAfterLinger(head: string, answered: RegExp): Promise<void> {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const c = await RawConnection.open(port);
      c.write(`${head}Content-Length: 100000000\r\n\r\n{`);
      await c.until((t) => answered.test(t) && t.includes('\r\n\r\n'));
      // Two turns of the loop: the answer's 'finish', which starts the linger, has been handled.
      for (let i = 0; i < 2; i += 1) await new Promise((r) => setImmediate(r));
      c.write('x'.repeat(1000));
      mock.timers.tick(REFUSED_BODY_LINGER_MS - 1);
      c.write('x'.repeat(1000));
      for (let i = 0; i < 2; i += 1) await new Promise((r) => setImmediate(r));
      assert.equal(c.isEnded, false, `${head.split('\r\n')[0]}: closed before the linger was over`);
      mock.timers.tick(1);
      await c.untilEnded();
    } finally {
      mock.timers.reset();
    }
  }

  it("a body dripping into a path served without a token (a 404, /healthz, docker's _ping) is closed after the linger, not held", async () => {
    for (const [method, path, answer] of [['POST', '/nothing', 404], ['GET', '/healthz', 200], ['GET', '/docker/_ping', 400]] as const) {
      await closedAfterLinger(`${method} ${path} HTTP/1.1\r\nHost: gw\r\n`, new RegExp(`^HTTP/1\\.1 ${answer} `));
    }
    assert.equal(engine.requests.filter((r) => r.url.includes('_ping')).length, 0, 'the _ping with a body was forwarded');
  });

  it(`a refused request whose body keeps dripping is closed ${REFUSED_BODY_LINGER_MS / 1000} s after the refusal, not held open (no token, huge Content-Length)`, async () => {
    for (const path of ['/k8s/api/v1/namespaces/a/configmaps', '/docker/v1.41/containers/create']) {
      await closedAfterLinger(`POST ${path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n`, /^HTTP\/1\.1 401/);
    }
  });
});
