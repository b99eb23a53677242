import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { gatewayCall, sharedGateway } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';

/**
 * Issue 24: a tenant's container, on its project network, reaches neither the engine host (any port, any of its
 * addresses) nor another project's containers. The gateway cannot enforce this; the engine's host does (dockerd
 * --iptables=true isolates bridge networks from each other, and an INPUT chain refuses what comes from the bridges:
 * test/e2e/env/lib.sh ensure_engine_isolation, docs/operations.md). Every "cannot reach" stands beside a positive
 * control: the same probe, from the same container, reaches alice's own second container.
 */

const PROBE_TIMEOUT_S = 3;

async function ok(p: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** What a TCP client on this host receives from host:port after sending an HTTP request ('' when nothing answers). */
function hostReceives(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('connect', () => socket.end('GET / HTTP/1.0\r\n\r\n'));
    socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

async function untilHostReceives(host: string, port: number, marker: string, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = await hostReceives(host, port, 2000);
    if (got.includes(marker)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer on ${host}:${port} within 20 s (got ${JSON.stringify(got)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The machine's IPv4 addresses other than loopback: the bridges' gateway addresses and its own network's. */
function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

describe('tenant network isolation on the real engine (project networks, iptables, through the gateway)', function () {
  const tag = randomBytes(3).toString('hex');
  const probe = `iso-probe-${tag}`;
  const peer = `iso-peer-${tag}`;
  const bobServer = `iso-bob-${tag}`;
  const hostMarker = `host-${tag}`;
  const peerMarker = `peer-${tag}`;
  const bobMarker = `bob-${tag}`;
  let alice: DockerUser;
  let bob: DockerUser;
  let server: net.Server | undefined;
  let hostPort: number;
  let peerIp: string;
  let bobIp: string;
  let gatewayIp: string;

  /** busybox httpd serving `marker` on :8080, the way a tenant's service listens on its project network. */
  const httpdArgs = (marker: string): string[] => [e2eEnv().busyboxImage, 'sh', '-c', `echo ${marker} >/www/index.html && exec httpd -f -p 8080 -h /www`];
  const inspectIp = async (user: DockerUser, name: string, field: 'IPAddress' | 'Gateway'): Promise<string> => {
    const out = (await ok(user.docker(['inspect', '-f', `{{range .NetworkSettings.Networks}}{{.${field}}} {{end}}`, name]), `inspect ${name}`)).trim();
    assert.match(out, /^\d+\.\d+\.\d+\.\d+$/, `${name} should be on exactly one IPv4 network, got ${JSON.stringify(out)}`);
    return out;
  };

  /** The probe: an HTTP request by nc from alice's probe container, through the gateway's exec; what came back. */
  async function fromAlice(host: string, port: number): Promise<string> {
    const res = await alice.docker(['exec', probe, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w ${PROBE_TIMEOUT_S} ${host} ${port}`], { timeoutMs: 30_000 });
    // Exit codes say little (nc exits 0 on some failures and 1 on others): the output decides.
    return res.stdout;
  }

  async function assertControl(): Promise<void> {
    const out = await fromAlice(peerIp, 8080);
    assert.match(out, /^HTTP\/1\.[01] 200 /, `control: alice's probe did not reach her own container ${peerIp}:8080: ${JSON.stringify(out)}`);
    assert.ok(out.includes(peerMarker), `control: alice's own container answered without its marker: ${JSON.stringify(out)}`);
  }

  before(async function () {
    this.timeout(120_000);
    const port = sharedGateway().port;
    alice = new DockerUser(port, { 'X-Auth-Token': (await issueToken('alice', 'alpha')).token });
    bob = new DockerUser(port, { 'X-Auth-Token': (await issueToken('bob', 'beta')).token });
    // A server on every address of the host, as any host service bound to 0.0.0.0 (the issue found kube components).
    const listening = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume(); // the request is read and dropped, so that the client's FIN is seen and the socket closes
      socket.end(`HTTP/1.0 200 OK\r\n\r\n${hostMarker}\n`);
    });
    server = listening;
    await new Promise<void>((resolve) => listening.listen(0, '0.0.0.0', resolve));
    hostPort = (listening.address() as net.AddressInfo).port;

    await ok(alice.docker(['run', '-d', '--name', probe, e2eEnv().busyboxImage, 'sleep', '600']), 'alice: run the probe container');
    await ok(alice.docker(['run', '-d', '--name', peer, ...httpdArgs(peerMarker)]), "alice: run her second container");
    await ok(bob.docker(['run', '-d', '--name', bobServer, ...httpdArgs(bobMarker)]), "bob: run his container");
    peerIp = await inspectIp(alice, peer, 'IPAddress');
    bobIp = await inspectIp(bob, bobServer, 'IPAddress');
    gatewayIp = await inspectIp(alice, probe, 'Gateway');
    // Both servers answer the host itself (the host may open connections to containers; replies come back).
    await untilHostReceives(peerIp, 8080, peerMarker, "alice's second container");
    await untilHostReceives(bobIp, 8080, bobMarker, "bob's container");
  });

  after(async function () {
    this.timeout(60_000);
    await engineDocker(['rm', '-f', probe, peer, bobServer]);
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  });

  it("runs alice's containers on her project network and bob's on his, IPv4 only", async () => {
    const networkOf = async (name: string): Promise<string> =>
      (await ok(engineDocker(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', name]), `engine inspect ${name}`)).trim();
    const [aliceNet, peerNet, bobNet] = await Promise.all([networkOf(probe), networkOf(peer), networkOf(bobServer)]);
    assert.match(aliceNet, /^zun-[0-9a-f]+$/);
    assert.equal(peerNet, aliceNet);
    assert.match(bobNet, /^zun-[0-9a-f]+$/);
    assert.notEqual(bobNet, aliceNet);
    // Without IPv6 on the project network, the host's IPv6 addresses have no route from the container: the IPv4
    // addresses below are all the host addresses a container can aim at.
    assert.equal((await ok(engineDocker(['network', 'inspect', '-f', '{{.EnableIPv6}}', aliceNet]), 'network inspect')).trim(), 'false');
  });

  it('a host port, on the project network gateway address and every other address of the machine, is out of reach', async function () {
    const addresses = [...new Set([gatewayIp, ...hostAddresses()])];
    this.timeout(30_000 + addresses.length * 2 * (PROBE_TIMEOUT_S + 5) * 1000);
    assert.ok(hostAddresses().includes(gatewayIp), `the project network's gateway ${gatewayIp} is not among the host's addresses ${hostAddresses().join(', ')}`);
    const reached: string[] = [];
    for (const address of addresses) {
      // The server answers on this address (from the host), so a silence below is the wall, not a missing server.
      assert.ok((await hostReceives(address, hostPort, 5000)).includes(hostMarker), `the host's own server does not answer on ${address}:${hostPort}`);
      const out = await fromAlice(address, hostPort);
      if (out !== '') reached.push(`${address}:${hostPort} answered ${JSON.stringify(out)}`);
      await assertControl();
    }
    assert.deepEqual(reached, [], `alice's container reached the host (probed ${addresses.join(', ')})`);
  });

  it("bob's container, by IP, is out of reach", async function () {
    this.timeout(60_000);
    const out = await fromAlice(bobIp, 8080);
    assert.equal(out, '', `alice's container reached bob's ${bobIp}:8080: ${JSON.stringify(out)}`);
    await assertControl();
  });
});

/**
 * Found by an adversarial review (2026-12-07), each reproduced on dockerd 20.10 before the fix: the engine resolves a
 * network by an endpoint's NetworkID rather than by the key the gateway checked, keeps a never-started container's
 * networks by name and looks them up again at its first start, and `docker top` keeps the rows of a column renamed PID
 * from a `ps` it may run over every host process.
 */
describe("another project's network is never joined, and the host's processes never listed, through the engine's own lookups", function () {
  const tag = randomBytes(3).toString('hex');
  const bobNet = `nid-bob-${tag}`;
  const reused = `nid-reused-${tag}`;
  const reusedByConnect = `nid-reused-c-${tag}`;
  const created = `nid-c-${tag}`;
  const connected = `nid-cc-${tag}`;
  const connectedStopped = `nid-cs-${tag}`;
  const top = `nid-top-${tag}`;
  const raw = [`nid-raw0-${tag}`, `nid-raw1-${tag}`];
  let alice: DockerUser;
  let bob: DockerUser;
  let aliceToken: string;

  const containersOn = async (network: string): Promise<string> =>
    (await ok(engineDocker(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', network]), `engine: inspect ${network}`)).trim();

  before(async function () {
    this.timeout(60_000);
    const port = sharedGateway().port;
    aliceToken = (await issueToken('alice', 'alpha')).token;
    alice = new DockerUser(port, { 'X-Auth-Token': aliceToken });
    bob = new DockerUser(port, { 'X-Auth-Token': (await issueToken('bob', 'beta')).token });
    await ok(bob.docker(['network', 'create', bobNet]), 'bob: network create');
  });

  after(async function () {
    this.timeout(60_000);
    await engineDocker(['rm', '-f', created, connected, connectedStopped, top, ...raw]);
    await engineDocker(['network', 'rm', bobNet, reused, reusedByConnect]);
  });

  it("an endpoint's NetworkID naming bob's network is refused at create and at connect (the engine joined it)", async function () {
    this.timeout(60_000);
    const bobId = (await ok(engineDocker(['network', 'inspect', '-f', '{{.Id}}', bobNet]), 'engine: network id')).trim();
    const gateway = sharedGateway();
    for (const [i, networkId] of [bobId, bobId.slice(0, 6)].entries()) {
      const create = await gatewayCall(gateway, `/docker/v1.41/containers/create?name=${raw[i]}`, aliceToken, {
        Image: e2eEnv().busyboxImage,
        Cmd: ['sleep', '60'],
        NetworkingConfig: { EndpointsConfig: { bridge: { NetworkID: networkId } } },
      });
      assert.equal(create.status, 400, create.body);
      assert.match(JSON.parse(create.body).message, /NetworkID is not allowed through the gateway/);
    }
    await ok(alice.docker(['create', '--name', connected, e2eEnv().busyboxImage, 'sleep', '600']), 'alice: create');
    const own = (await ok(alice.docker(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}', connected]), 'alice: inspect')).trim();
    const connect = await gatewayCall(gateway, `/docker/v1.41/networks/${own}/connect`, aliceToken, { Container: connected, EndpointConfig: { NetworkID: bobId } });
    assert.equal(connect.status, 400, connect.body);
    assert.equal(await containersOn(bobNet), '', "nothing of alice's is on bob's network");
  });

  it("a never-started container's network, removed and made again under its name by bob, is not joined at its first start", async function () {
    this.timeout(120_000);
    await ok(alice.docker(['network', 'create', reused]), 'alice: network create');
    await ok(alice.docker(['create', '--name', created, '--network', reused, e2eEnv().busyboxImage, 'sleep', '600']), 'alice: create on her network');
    await ok(alice.docker(['network', 'create', reusedByConnect]), 'alice: second network create');
    await ok(alice.docker(['create', '--name', connectedStopped, e2eEnv().busyboxImage, 'sleep', '600']), 'alice: create on her project network');
    await ok(alice.docker(['network', 'connect', reusedByConnect, connectedStopped]), 'alice: connect the stopped container');
    // Neither container has started, so neither holds an endpoint: both networks can go.
    await ok(alice.docker(['network', 'rm', reused, reusedByConnect]), 'alice: network rm');
    await ok(bob.docker(['network', 'create', reused]), 'bob: network create under the same name');
    await ok(bob.docker(['network', 'create', reusedByConnect]), 'bob: the second one too');
    for (const name of [created, connectedStopped]) {
      const start = await alice.docker(['start', name]);
      assert.notEqual(start.code, 0, `alice's ${name} started: ${start.stdout}`);
      assert.match(start.stderr, /network [0-9a-f]{64} not found/);
    }
    assert.equal(await containersOn(reused), '', "alice's container joined bob's network");
    assert.equal(await containersOn(reusedByConnect), '', "alice's connected container joined bob's network");
  });

  it("names the engine reads another way are refused: networks called NONE, Bridge or container:<x>, and Container:<x> or NONE as a container's network", async function () {
    this.timeout(60_000);
    for (const name of ['NONE', 'Bridge', `container:${bobNet}`]) {
      const made = await bob.docker(['network', 'create', name]);
      assert.notEqual(made.code, 0, `bob made a network named ${name}`);
      assert.match(made.stderr, /is not allowed through the gateway: the engine could take it for one of its own networks, a container or a network id/);
    }
    const mode = await alice.docker(['create', '--network', `Container:${top}`, e2eEnv().busyboxImage, 'true']);
    assert.notEqual(mode.code, 0, mode.stdout);
    assert.match(mode.stderr, /write container: in lower case/);
    const upper = await alice.docker(['create', '--network', 'NONE', e2eEnv().busyboxImage, 'true']);
    assert.notEqual(upper.code, 0, upper.stdout);
    assert.match(upper.stderr, /names a network that is not yours/);
  });

  it('docker top with ps options that misplace the PID column is refused; the usual ones list the container\'s own processes', async function () {
    this.timeout(60_000);
    await ok(alice.docker(['run', '-d', '--name', top, e2eEnv().busyboxImage, 'sleep', '600']), 'alice: run');
    for (const args of [['-orss=PID', '-oargs', 'e', '-e', '--forest'], ['--no-headers', '--sort', 'ucmd', '-o', 'ucmd,status,pid,args', 'e']]) {
      const refusedTop = await alice.docker(['top', top, ...args]);
      assert.notEqual(refusedTop.code, 0, refusedTop.stdout);
      assert.match(refusedTop.stderr, /is not served through the gateway: the engine would match ps's rows by a column it cannot trust/);
    }
    const listed = await ok(alice.docker(['top', top, '-eo', 'pid,comm']), 'alice: docker top -eo pid,comm');
    assert.deepEqual(listed.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]), ['sleep']);
  });
});
