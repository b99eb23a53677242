import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { httpsGet, sharedGateway, startGateway } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import {
  applicationCredentialToken,
  changeOwnPassword,
  createApplicationCredential,
  createUserWithProject,
  deleteApplicationCredential,
  deleteProject,
  deleteUser,
  passwordToken,
} from './support/keystone-admin.js';
import { E2E_CACHE_TTL_SECONDS } from './support/hooks.js';
import { auditRecordMatching, metricValue } from './support/observability.js';
import { run } from './support/run.js';

const IMAGE = (): string => e2eEnv().busyboxImage;

async function ok(p: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

describe('docker CLI through the gateway (real dockerd, real docker 28 CLI, TLS, Keystone)', function () {
  const tag = randomBytes(3).toString('hex');
  const name = `web-${tag}`;
  let alice: DockerUser;
  let bob: DockerUser;
  let containerId: string;
  const since = Math.floor(Date.now() / 1000) - 2;

  before(async function () {
    this.timeout(60_000);
    const port = sharedGateway().port;
    alice = new DockerUser(port, { 'X-Auth-Token': (await issueToken('alice', 'alpha')).token });
    bob = new DockerUser(port, { 'X-Auth-Token': (await issueToken('bob', 'beta')).token });
  });

  after(async function () {
    this.timeout(60_000);
    await engineDocker(['rm', '-f', name]);
  });

  it("a project makes at most 5 networks (docker.limits.maxNetworksPerProject): the sixth is refused with the limit, another project's still made", async function () {
    this.timeout(120_000);
    // A project of its own: the count starts at zero on an engine other runs left networks on.
    const user = `nets-${tag}`;
    const password = randomBytes(12).toString('hex');
    const { userId, projectId } = await createUserWithProject(user, password);
    const nets = new DockerUser(sharedGateway().port, { 'X-Auth-Token': await passwordToken(user, password, user) });
    try {
      for (let i = 0; i < 5; i += 1) await ok(nets.docker(['network', 'create', `${user}-${i}`]), `network create ${i}`);
      const sixth = await nets.docker(['network', 'create', `${user}-5`]);
      assert.notEqual(sixth.code, 0);
      assert.match(sixth.stderr, new RegExp(`project ${user} already has 5 networks, the most allowed is 5; remove some first`));
      const made = await ok(engineDocker(['network', 'ls', '-q', '--filter', `label=org.openstack.zun-gateway.project-id=${projectId}`]), 'engine network ls');
      assert.equal(made.trim().split('\n').length, 5, made);
      const other = `${name}-net-other`;
      await ok(bob.docker(['network', 'create', other]), 'bob: network create');
      await ok(bob.docker(['network', 'rm', other]), 'bob: network rm');
    } finally {
      for (let i = 0; i < 6; i += 1) await nets.docker(['network', 'rm', `${user}-${i}`]);
      await deleteUser(userId);
      await deleteProject(projectId);
    }
  });

  it('negotiates the API version and reports both versions', async () => {
    const out = await ok(alice.docker(['version', '--format', '{{.Client.APIVersion}} {{.Server.APIVersion}}']), 'docker version');
    assert.match(out.trim(), /^1\.\d+ 1\.\d+$/);
  });

  it('alice: docker run -d, ps, logs -f streams, exec with stdin, cp both ways', async function () {
    this.timeout(120_000);
    containerId = (await ok(alice.docker(['run', '-d', '--name', name, IMAGE(), 'sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done']), 'run')).trim();
    assert.match(containerId, /^[0-9a-f]{64}$/);
    const ps = await ok(alice.docker(['ps', '--format', '{{.Names}}']), 'ps');
    assert.ok(ps.split('\n').includes(name), ps);
    // With filters of the client's own (the CLI sends {"name":{"<name>":true}}; the gateway adds the owner label).
    const filtered = await ok(alice.docker(['ps', '-a', '--filter', `name=${name}`, '--filter', 'status=running', '--format', '{{.Names}}']), 'ps --filter');
    assert.deepEqual(filtered.trim().split('\n'), [name]);

    const logs = alice.background(['logs', '-f', name]);
    try {
      await logs.waitFor((out) => /tick-\d+\n/.test(out), 20_000, 'logs -f');
      const first = logs.stdout.length;
      await logs.waitFor((out) => out.length > first && /tick-\d+\n$/.test(out), 5_000, 'more lines while following');
      assert.equal(logs.child.exitCode, null);
    } finally {
      await logs.stop();
    }

    const payload = `stdin-${tag}\nline two\n`;
    assert.equal(await ok(alice.docker(['exec', '-i', name, 'cat'], { input: payload }), 'exec -i cat (half-close)'), payload);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-dcp-'));
    const content = randomBytes(100_000);
    writeFileSync(path.join(dir, 'up.bin'), content);
    await ok(alice.docker(['cp', path.join(dir, 'up.bin'), `${name}:/tmp/up.bin`]), 'cp into the container');
    await ok(alice.docker(['cp', `${name}:/tmp/up.bin`, path.join(dir, 'down.bin')]), 'cp out of the container');
    assert.ok(readFileSync(path.join(dir, 'down.bin')).equals(content));
  });

  it('the audit trail names alice, alpha and the container for her exec session, and its bytes', async () => {
    const started = new Date(Date.now() - 1000);
    const payload = `audited-${tag}\n`;
    assert.equal(await ok(alice.docker(['exec', '-i', name, 'cat'], { input: payload }), 'exec -i cat'), payload);
    const session = await auditRecordMatching(started, (r) => r.coe === 'docker' && r.kind === 'session' && /\/exec\/[^/]+\/start$/.test(r.path));
    assert.equal(session.user?.name, 'alice');
    assert.equal(session.project?.name, 'alpha');
    assert.equal(session.status, 101);
    assert.match(String(session.object), /^exec:[0-9a-f]{64}$/);
    assert.ok(session.bytesIn >= payload.length && session.bytesOut >= payload.length, JSON.stringify(session));
    const created = await auditRecordMatching(started, (r) => r.coe === 'docker' && r.method === 'POST' && /\/containers\/[^/]+\/exec$/.test(r.path));
    assert.equal(created.object, `container:${name}`);
    assert.equal(created.status, 201);
    assert.equal(created.client, '127.0.0.1');
    assert.ok(await metricValue('zun_gateway_requests_total', { coe: 'docker', code: '101' }) >= 1);
  });

  it('alice: exec with a tty through script(1)', async function () {
    this.timeout(30_000);
    const res = await run('script', ['-qec', `docker exec -t ${name} sh -c 'tty; echo tty-ok'`, '/dev/null'], { env: alice.env, timeoutMs: 20_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /\/dev\/pts\/\d+/);
    assert.match(res.stdout, /tty-ok/);
  });

  it('alice: volume create, ls, rm', async () => {
    const vol = `data-${tag}`;
    await ok(alice.docker(['volume', 'create', vol]), 'volume create');
    assert.ok((await ok(alice.docker(['volume', 'ls', '-q']), 'volume ls')).split('\n').includes(vol));
    assert.ok(!(await ok(bob.docker(['volume', 'ls', '-q']), 'bob volume ls')).split('\n').includes(vol), "bob sees alice's volume");
    const bobRm = await bob.docker(['volume', 'rm', vol]);
    assert.notEqual(bobRm.code, 0);
    assert.match(bobRm.stderr, /no such volume/);
    await ok(alice.docker(['volume', 'rm', vol]), 'volume rm');
  });

  it("bob: alice's container is absent from ps -a, and by id, id prefix and name it does not exist", async () => {
    const ps = await ok(bob.docker(['ps', '-a', '--format', '{{.ID}} {{.Names}}']), 'bob ps -a');
    assert.ok(!ps.includes(name) && !ps.includes(containerId.slice(0, 12)), ps);
    // Exactly as for a container that does not exist: same exit code, same message.
    const missing = `missing-${tag}`;
    for (const ref of [containerId, containerId.slice(0, 8), name]) {
      // export and cp read a container's files (invariants.md 20): they must not reach alice's either.
      for (const args of [['inspect', ref], ['logs', ref], ['exec', ref, 'true'], ['export', '-o', `/tmp/zgw-bob-export-${tag}.tar`, ref], ['cp', `${ref}:/etc/hostname`, '-'], ['stop', ref], ['rm', '-f', ref]]) {
        const res = await bob.docker(args);
        const control = await bob.docker(args.map((a) => a.split(ref).join(missing)));
        // (`docker rm -f` of a missing container exits 0 with a message: the control says what "missing" looks like.)
        assert.equal(res.code, control.code, `docker ${args.join(' ')}`);
        assert.equal(res.stderr, control.stderr.split(missing).join(ref), `docker ${args.join(' ')}`);
        assert.match(res.stderr, /No such (container|object)/i);
      }
    }
    assert.match(await ok(engineDocker(['inspect', '-f', '{{.State.Running}}', containerId]), 'engine inspect'), /true/, "bob stopped or removed alice's container");
  });

  it('alice: events --since shows her objects only', async function () {
    this.timeout(30_000);
    const bobName = `bob-${tag}`;
    await ok(bob.docker(['run', '--rm', '--name', bobName, IMAGE(), 'true']), 'bob run');
    const res = await alice.docker(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--format', '{{.Actor.Attributes.name}}']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(name));
    assert.doesNotMatch(res.stdout, new RegExp(bobName));
  });

  it('alice: docker events and docker stats follow live: each event and sample arrives while the command runs, bob\'s never (invariants.md 11)', async function () {
    this.timeout(60_000);
    const events = alice.background(['events', '--filter', 'type=container', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    const stats = alice.background(['stats', '--format', 'sample {{.Name}} {{.MemUsage}}', name]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000)); // both streams open
      const bobName = `bob-live-${tag}`;
      const aliceName = `live-${tag}`;
      await ok(bob.docker(['create', '--name', bobName, IMAGE(), 'true']), 'bob create');
      await ok(alice.docker(['create', '--name', aliceName, IMAGE(), 'true']), 'alice create');
      await events.waitFor((out) => out.includes(`create ${aliceName}`), 10_000, "alice's create event while following");
      await ok(alice.docker(['rm', aliceName]), 'alice rm');
      await events.waitFor((out) => out.includes(`destroy ${aliceName}`), 10_000, "alice's destroy event while following");
      await ok(bob.docker(['rm', bobName]), 'bob rm');
      assert.equal(events.child.exitCode, null, 'docker events ended');
      assert.doesNotMatch(events.stdout, new RegExp(bobName), "bob's container showed in alice's events");
      await stats.waitFor((out) => out.split(`sample ${name}`).length > 3, 15_000, 'three stats samples while following');
      assert.equal(stats.child.exitCode, null, 'docker stats ended');
    } finally {
      await events.stop();
      await stats.stop();
    }
  });

  it('alice: the everyday commands work (top, stats, rename, restart, update, diff, kill, wait, pause, start -a, networks, images); bob sees none of it', async function () {
    this.timeout(180_000);
    const daily = `daily-${tag}`;
    const net = `net-${tag}`;
    try {
      await ok(alice.docker(['run', '-d', '--name', daily, IMAGE(), 'sh', '-c', 'while true; do echo hi; sleep 1; done']), 'run');
      assert.match(await ok(alice.docker(['top', daily]), 'top'), /while true/);
      assert.match(await ok(alice.docker(['stats', '--no-stream', '--format', '{{.Name}}', daily]), 'stats'), new RegExp(daily));
      await ok(alice.docker(['rename', daily, `${daily}-b`]), 'rename');
      await ok(alice.docker(['rename', `${daily}-b`, daily]), 'rename back');
      await ok(alice.docker(['restart', '-t', '1', daily]), 'restart');
      await ok(alice.docker(['update', '--memory', '128m', '--memory-swap', '256m', daily]), 'update within the limits');
      assert.equal((await ok(alice.docker(['inspect', '--format', '{{.HostConfig.Memory}}', daily]), 'inspect')).trim(), String(128 * 1024 * 1024));
      await ok(alice.docker(['exec', daily, 'touch', '/tmp/changed']), 'exec');
      assert.match(await ok(alice.docker(['diff', daily]), 'diff'), /\/tmp\/changed/);
      await ok(alice.docker(['pause', daily]), 'pause');
      await ok(alice.docker(['unpause', daily]), 'unpause');
      await ok(alice.docker(['kill', daily]), 'kill');
      assert.equal((await ok(alice.docker(['wait', daily]), 'wait')).trim(), '137');
      await ok(alice.docker(['network', 'create', net]), 'network create');
      await ok(alice.docker(['create', '--name', `${daily}-a`, '--network', net, IMAGE(), 'sh', '-c', 'echo started-attached']), 'create on the network');
      assert.equal(await ok(alice.docker(['start', '-a', `${daily}-a`]), 'start -a'), 'started-attached\n');
      assert.ok((await ok(alice.docker(['network', 'ls', '--format', '{{.Name}}']), 'network ls')).split('\n').includes(net));
      assert.match(await ok(alice.docker(['images', '--format', '{{.Repository}}']), 'images'), /local\/busybox/);

      const bobNets = await ok(bob.docker(['network', 'ls', '--format', '{{.Name}}']), 'bob: network ls');
      assert.ok(!bobNets.split('\n').includes(net), `bob sees alice's network: ${bobNets}`);
      for (const args of [['network', 'rm', net], ['restart', daily], ['top', daily], ['rename', daily, 'mine-now']]) {
        const r = await bob.docker(args);
        assert.notEqual(r.code, 0, `bob: docker ${args.join(' ')} succeeded`);
        assert.match(r.stderr, /No such|not found/i, `bob: docker ${args.join(' ')}: ${r.stderr}`);
      }
      // Host-level commands are refused with the reason.
      const df = await alice.docker(['system', 'df']);
      assert.notEqual(df.code, 0);
      assert.match(df.stderr, /not available through the gateway: system data is engine-wide/);
      const commit = await alice.docker(['commit', daily, `mine-${tag}`]);
      assert.notEqual(commit.code, 0);
      assert.match(commit.stderr, /not available through the gateway: committing creates engine-wide images/);
    } finally {
      await engineDocker(['rm', '-f', daily, `${daily}-a`]);
      await engineDocker(['network', 'rm', net]);
    }
  });

  it('ten docker creates at once with room for three make three; the others are told the limit', async function () {
    this.timeout(120_000);
    const { projectId } = await issueToken('alice', 'alpha');
    const owned = await engineDocker(['ps', '-aq', '--filter', `label=org.openstack.zun-gateway.project-id=${projectId}`]);
    const have = owned.stdout.split('\n').filter((l) => l.length > 0).length;
    const gw = await startGateway({ cacheTtlSeconds: 300, maxContainersPerProject: have + 3 });
    const names = Array.from({ length: 10 }, (_, i) => `quota-${tag}-${i}`);
    try {
      const user = new DockerUser(gw.port, { 'X-Auth-Token': (await issueToken('alice', 'alpha')).token });
      const results = await Promise.all(names.map((n) => user.docker(['create', '--name', n, IMAGE(), 'true'])));
      assert.equal(results.filter((r) => r.code === 0).length, 3, results.map((r) => r.stderr).join(''));
      for (const r of results.filter((x) => x.code !== 0)) assert.match(r.stderr, new RegExp(`already has ${have + 3} containers, the most allowed is ${have + 3}`));
    } finally {
      await engineDocker(['rm', '-f', ...names]);
      await gw.stop();
    }
  });

  it("docker info counts the project's own containers by state, and the images it may use (as docker images lists them)", async () => {
    const out = await ok(alice.docker(['info', '--format', '{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}']), 'docker info');
    const [total, running, paused, stopped, images] = out.trim().split(' ').map(Number) as [number, number, number, number, number];
    const own = (await ok(alice.docker(['ps', '-a', '--format', '{{.State}}']), 'ps -a')).split('\n').filter((l) => l !== '');
    assert.equal(total, own.length);
    assert.equal(running, own.filter((s) => s === 'running').length);
    assert.equal(total, running + paused + stopped);
    const ids = new Set((await ok(alice.docker(['images', '-q', '--no-trunc']), 'images')).split('\n').filter((l) => l !== ''));
    assert.equal(images, ids.size);
  });

  it('docker version gives the oldest API version the gateway serves (1.40), not the engine\'s (1.12 on 20.10)', async () => {
    const direct = await ok(engineDocker(['version', '--format', '{{.Server.MinAPIVersion}}']), 'engine version');
    assert.equal(Number(direct.trim().split('.')[1]) < 40, true, `this engine's own minimum is ${direct.trim()}: the test needs one older than 1.40`);
    const out = await ok(alice.docker(['version', '--format', '{{.Server.MinAPIVersion}} {{range .Server.Components}}{{if eq .Name "Engine"}}{{index .Details "MinAPIVersion"}}{{end}}{{end}}']), 'docker version');
    assert.equal(out.trim(), '1.40 1.40');
  });

  it('a DOCKER_HOST without /docker, or ending in /k8s, gets an error saying how to set it', async () => {
    for (const suffix of ['', '/k8s']) {
      const r = await run('docker', ['ps'], { env: { ...alice.env, DOCKER_HOST: `tcp://127.0.0.1:${sharedGateway().port}${suffix}` }, timeoutMs: 60_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /under \/docker on this gateway: set DOCKER_HOST=tcp:\/\/<gateway host>:<port>\/docker/, suffix);
    }
  });

  it('docker without TLS against the TLS port is told to use it', async () => {
    const r = await run('docker', ['ps'], { env: { ...alice.env, DOCKER_TLS_VERIFY: '' }, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /this port speaks HTTPS/);
  });

  it('alice: stop and rm', async function () {
    this.timeout(60_000);
    await ok(alice.docker(['stop', '-t', '1', name]), 'stop');
    await ok(alice.docker(['rm', name]), 'rm');
    assert.equal((await engineDocker(['inspect', containerId])).code, 1);
  });

  const escapes: Array<[string[], RegExp]> = [
    [['--privileged'], /--privileged/],
    [['-v', '/:/host'], /-v \/host\/path/],
    [['--mount', 'type=bind,source=/,target=/host'], /--mount type=bind/],
    [['--cap-add', 'SYS_ADMIN'], /--cap-add/],
    [['--device', '/dev/null:/dev/x'], /--device/],
    [['--pid', 'host'], /--pid host/],
    [['--network', 'host'], /--network host/],
    [['--ipc', 'host'], /--ipc host/],
    [['--uts', 'host'], /--uts host/],
    [['--userns', 'host'], /--userns host/],
    [['--security-opt', 'seccomp=unconfined'], /--security-opt seccomp=unconfined/],
    [['--sysctl', 'net.ipv4.ip_forward=1'], /--sysctl/],
    [['--volume-driver', 'local', '-v', 'x:/x'], /--volume-driver/],
    [['--log-driver', 'syslog'], /--log-driver/],
    [['--cgroup-parent', '/evil'], /--cgroup-parent/],
    [['--runtime', 'runc'], /--runtime/],
    [['--memory', '4g'], /--memory/],
    // Real-time CPU is not bounded by the CFS quota; this engine happens to refuse it too, so the gateway's own words are checked.
    [['--cpu-rt-runtime', '950000'], /CpuRealtimeRuntime \(--cpu-rt-runtime; in compose: cpu_rt_runtime\) is not allowed through the gateway/],
    [['--cpu-rt-period', '1000000'], /CpuRealtimePeriod \(--cpu-rt-period; in compose: cpu_rt_period\) is not allowed through the gateway/],
    [['--ulimit', 'rtprio=99'], /Ulimits rtprio \(--ulimit rtprio=\.\.\.; in compose: ulimits\) is not allowed through the gateway: .*real-time/],
    [['--ulimit', 'memlock=-1'], /Ulimits memlock .* \(unlimited\) would lift the limit of 67108864 \(docker\.limits\.maxMemlock\)/],
    [['--ulimit', 'nofile=2000000'], /Ulimits nofile .* is above the limit of 1048576 \(docker\.limits\.maxNofile\)/],
    [['--cpu-quota', '-1'], /CpuQuota \(--cpu-quota; in compose: cpu_quota\) -1 would lift the limit of 2 CPUs per container/],
    [['--memory-swap', '-1'], /MemorySwap \(--memory-swap; in compose: memswap_limit\) -1 would lift/],
    [['--cpu-shares', '262144'], /--cpu-shares/],
    [['--kernel-memory', '64m'], /--kernel-memory/],
    [['--blkio-weight', '1000'], /--blkio-weight/],
    [['--security-opt', 'writable-cgroups=true'], /writable-cgroups=true.*lift its own CPU, memory and process limits/],
    [['--security-opt', 'label=level:s0:c1,c2'], /SELinux label/],
  ];
  for (const [flags, option] of escapes) {
    it(`refuses docker run ${flags.join(' ')} naming the option, and creates nothing`, async () => {
      const cname = `escape-${randomBytes(3).toString('hex')}`;
      const res = await alice.docker(['run', '--name', cname, ...flags, IMAGE(), 'true']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, option);
      assert.notEqual((await engineDocker(['inspect', cname])).code, 0, 'a container was created');
    });
  }

  describe('raw bodies with curl', () => {
    const curl = (method: string, urlPath: string, token: string, data?: string) =>
      run('curl', [
        '-sS', '--cacert', e2eEnv().tlsCa, '-X', method, '-o', '-', '-w', '\n%{http_code}',
        '-H', `X-Auth-Token: ${token}`, '-H', 'Content-Type: application/json',
        ...(data !== undefined ? ['--data-binary', data] : []),
        `${sharedGateway().url}${urlPath}`,
      ]);
    const statusOf = (out: string): number => Number(out.trim().split('\n').pop());
    let token: string;
    before(async () => {
      token = (await issueToken('alice', 'alpha')).token;
    });

    for (const [label, data] of [
      ['case-variant Privileged', `{"Image":"${'local/busybox:latest'}","HostConfig":{"Privileged":false,"privileged":true}}`],
      ['duplicate Privileged', `{"Image":"local/busybox:latest","HostConfig":{"Privileged":false,"Privileged":true}}`],
      ['case-variant Binds', '{"Image":"local/busybox:latest","HostConfig":{"binds":["/:/host"]}}'],
      ['Binds under a folded key', '{"Image":"local/busybox:latest","HostConfig":{"Bind\u017f":["/:/host"]}}'],
      ['a forged ownership label', '{"Image":"local/busybox:latest","Labels":{"org.openstack.zun-gateway.project-id":"someone-else"}}'],
    ] as const) {
      it(`refuses ${label}`, async () => {
        const res = await curl('POST', '/docker/v1.41/containers/create', token, data);
        assert.equal(statusOf(res.stdout), 400, res.stdout);
        assert.match(res.stdout, /"message"/);
      });
    }

    it('refuses HostConfig settings at the top level of a create, which dockerd merges into HostConfig (262144 CPU shares ran)', async () => {
      const name = `toplevel-${randomBytes(3).toString('hex')}`;
      try {
        const res = await curl('POST', `/docker/v1.41/containers/create?name=${name}`, token, '{"Image":"local/busybox:latest","Cmd":["true"],"CpuShares":262144,"HostConfig":{}}');
        assert.equal(statusOf(res.stdout), 400, res.stdout);
        assert.match(res.stdout, /CpuShares at the top level of a container create is read by the engine as a HostConfig setting/);
        assert.notEqual((await engineDocker(['inspect', name])).code, 0, 'a container was created');
      } finally {
        await engineDocker(['rm', '-f', name]);
      }
    });

    it('URL-encoded version prefixes are normalized before any decision', async () => {
      const create = await curl('POST', '/docker/v%31.41/containers/create', token, '{"Image":"local/busybox:latest","HostConfig":{"Privileged":true}}');
      assert.equal(statusOf(create.stdout), 400);
      const build = await curl('POST', '/docker/v%31.41/build', token, '');
      assert.equal(statusOf(build.stdout), 403);
      assert.match(build.stdout, /builds run on the host/);
      const list = await curl('GET', '/docker/%76%31.41/containers/json?all=1', token);
      assert.equal(statusOf(list.stdout), 200);
    });
  });

  describe("another project's things and the host, found by a security review", () => {
    const t = randomBytes(3).toString('hex');
    const bobVol = `bobvol-${t}`;
    const bobNet = `bobnet-${t}`;
    const aliceVol = `alicevol-${t}`;
    const cname = `old-api-${t}`;
    let token: string;
    const curl = (method: string, urlPath: string, data?: string) =>
      run('curl', [
        '-sS', '--cacert', e2eEnv().tlsCa, '-X', method, '-o', '-', '-w', '\n%{http_code}', '-H', `X-Auth-Token: ${token}`,
        '-H', 'Content-Type: application/json', ...(data !== undefined ? ['--data-binary', data] : []), `${sharedGateway().url}${urlPath}`,
      ]);

    before(async function () {
      this.timeout(60_000);
      token = (await issueToken('alice', 'alpha')).token;
      await ok(bob.docker(['volume', 'create', bobVol]), 'bob volume create');
      await ok(bob.docker(['run', '--rm', '-v', `${bobVol}:/data`, IMAGE(), 'sh', '-c', 'echo BOB-SECRET > /data/secret']), 'bob writes his volume');
      await ok(bob.docker(['network', 'create', bobNet]), 'bob network create');
    });

    after(async function () {
      this.timeout(60_000);
      await engineDocker(['rm', '-f', cname]);
      await engineDocker(['volume', 'rm', '-f', bobVol, aliceVol]);
      await engineDocker(['network', 'rm', bobNet]);
    });

    it('a HostConfig sent to start under API 1.23 is refused and the container keeps its own (no host root)', async () => {
      const created = await curl('POST', `/docker/v1.41/containers/create?name=${cname}`, `{"Image":"${IMAGE()}","Cmd":["true"]}`);
      assert.match(created.stdout, /\n201$/);
      const old = await curl('POST', `/docker/v1.23/containers/${cname}/start`, '{"Binds":["/:/host"],"PidMode":"host"}');
      assert.match(old.stdout, /oldest is 1\.40[\s\S]*\n400$/);
      const current = await curl('POST', `/docker/v1.41/containers/${cname}/start`, '{"Binds":["/:/host"]}');
      assert.match(current.stdout, /takes no body[\s\S]*\n400$/);
      const inspect = JSON.parse(await ok(engineDocker(['inspect', cname]), 'inspect'))[0];
      assert.equal(inspect.HostConfig.Binds, null);
      assert.equal(inspect.State.StartedAt, '0001-01-01T00:00:00Z', 'the container was started');
    });

    it("alice cannot mount bob's volume, by -v or --mount, nor learn about it from a volume create", async () => {
      for (const flags of [['-v', `${bobVol}:/x`], ['--mount', `type=volume,source=${bobVol},target=/x`]]) {
        const res = await alice.docker(['run', '--rm', ...flags, IMAGE(), 'cat', '/x/secret']);
        assert.notEqual(res.code, 0, flags.join(' '));
        assert.match(res.stderr, /is taken on this engine/);
        assert.doesNotMatch(res.stdout + res.stderr, /BOB-SECRET/);
      }
      const create = await alice.docker(['volume', 'create', bobVol]);
      assert.notEqual(create.code, 0);
      assert.doesNotMatch(create.stdout + create.stderr, /project-id|_data/);
    });

    it('alice: -v name:/path makes her own volume, which bob cannot see', async () => {
      const out = await ok(alice.docker(['run', '--rm', '-v', `${aliceVol}:/data`, IMAGE(), 'sh', '-c', 'echo mine > /data/f && cat /data/f']), 'run -v');
      assert.match(out, /mine/);
      assert.ok((await ok(alice.docker(['volume', 'ls', '-q']), 'volume ls')).split('\n').includes(aliceVol));
      assert.ok(!(await ok(bob.docker(['volume', 'ls', '-q']), 'bob volume ls')).split('\n').includes(aliceVol));
    });

    it("alice cannot join bob's network by name or id prefix", async () => {
      const id = (await ok(engineDocker(['network', 'inspect', '-f', '{{.Id}}', bobNet]), 'network id')).trim().slice(0, 12);
      for (const ref of [bobNet, id]) {
        const res = await alice.docker(['run', '--rm', '--network', ref, IMAGE(), 'true']);
        assert.notEqual(res.code, 0, ref);
        assert.match(res.stderr, /names a network that is not yours/);
      }
    });

    it("publishing a port on the engine's host is refused naming -p", async () => {
      const res = await alice.docker(['run', '--rm', '-p', '127.0.0.1:18777:80', IMAGE(), 'true']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /PortBindings \(-p; in compose: ports\)/);
    });

    it("a pull from the engine host's loopback is refused before the engine fetches it", async () => {
      const res = await alice.docker(['pull', '127.0.0.1:5000/v3/x']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /pulling from 127\.0\.0\.1:5000 is not allowed/);
      assert.doesNotMatch(res.stderr, /html|404 page/i);
    });

    it("carol, a reader of alpha, can list and read logs of alice's container but not exec into it or remove it", async () => {
      const carol = new DockerUser(sharedGateway().port, { 'X-Auth-Token': (await issueToken('carol', 'alpha')).token });
      const victim = `reader-${t}`;
      await ok(alice.docker(['run', '-d', '--name', victim, IMAGE(), 'sh', '-c', 'echo ALICE-SECRET > /secret; echo started; sleep 300']), 'alice run');
      try {
        assert.ok((await ok(carol.docker(['ps', '--format', '{{.Names}}']), 'carol ps')).split('\n').includes(victim));
        for (const args of [['exec', victim, 'cat', '/secret'], ['cp', `${victim}:/secret`, '-'], ['rm', '-f', victim]]) {
          const res = await carol.docker(args);
          assert.notEqual(res.code, 0, args.join(' '));
          assert.match(res.stderr, /allow listing, inspecting and reading logs only/);
          assert.doesNotMatch(res.stdout, /ALICE-SECRET/);
        }
        assert.equal((await engineDocker(['inspect', '-f', '{{.State.Running}}', victim])).stdout.trim(), 'true');
      } finally {
        await engineDocker(['rm', '-f', victim]);
      }
    });

    it('a container gets a process limit by default (no host-wide fork bomb); above the maximum is refused', async () => {
      const c = `pids-${t}`;
      await ok(alice.docker(['create', '--name', c, IMAGE(), 'true']), 'create');
      try {
        assert.equal((await ok(engineDocker(['inspect', '-f', '{{.HostConfig.PidsLimit}}', c]), 'inspect')).trim(), '4096');
      } finally {
        await engineDocker(['rm', '-f', c]);
      }
      const res = await alice.docker(['run', '--rm', '--pids-limit', '100000', IMAGE(), 'true']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /--pids-limit/);
    });

    it("containers that name no network join their project's own network: alice's find each other by name, bob's cannot", async function () {
      this.timeout(120_000);
      const web = `pnet-${t}`;
      await ok(alice.docker(['run', '-d', '--name', web, IMAGE(), 'sleep', '300']), 'run web');
      try {
        const net = (await ok(engineDocker(['inspect', '-f', '{{.HostConfig.NetworkMode}}', web]), 'inspect')).trim();
        assert.notEqual(net, 'default');
        const aliceNets = (await ok(alice.docker(['network', 'ls', '--format', '{{.ID}}']), 'network ls')).split('\n').filter((l) => l !== '');
        assert.ok(aliceNets.some((id) => net.startsWith(id)), `alice does not see her network ${net}: ${aliceNets.join(' ')}`);
        // (ping: this image's static busybox wget crashes on any address)
        assert.match(await ok(alice.docker(['run', '--rm', IMAGE(), 'ping', '-c1', '-W2', web]), 'alice ping'), /1 packets received/);
        const bobTry = await bob.docker(['run', '--rm', IMAGE(), 'ping', '-c1', '-W2', web]);
        assert.notEqual(bobTry.code, 0);
        assert.match(bobTry.stdout + bobTry.stderr, /bad address/);
        const bobNets = (await ok(bob.docker(['network', 'ls', '--format', '{{.ID}}']), 'bob network ls')).split('\n');
        assert.ok(!bobNets.some((id) => id !== '' && net.startsWith(id)), "bob sees alice's network");
      } finally {
        await engineDocker(['rm', '-f', web]);
      }
    });

    /** The CPU quota and period of a container's cgroup, read on the engine's side ("-1 100000", or cgroup v2's "max 100000"). */
    const cpuCgroup = async (container: string): Promise<string> =>
      (
        await ok(
          engineDocker(['exec', container, 'sh', '-c', 'if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; else echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi']),
          'read the cgroup',
        )
      ).trim();

    it('docker update cannot lift the CPU limit: --cpu-quota -1 and a lone --cpu-period are refused and the cgroup keeps its quota; --cpus still changes it', async function () {
      this.timeout(60_000);
      const c = `cpu-${t}`;
      await ok(alice.docker(['run', '-d', '--name', c, '--cpus', '1', IMAGE(), 'sleep', '300']), 'run --cpus 1');
      try {
        assert.equal(await cpuCgroup(c), '100000 100000');
        const attempts: Array<[string[], RegExp]> = [
          // The issue's report: accepted before, and the cgroup's quota became -1 (no limit) while inspect still showed NanoCpus.
          [['--cpu-quota', '-1'], /CpuQuota \(--cpu-quota; in compose: cpu_quota\) -1 would lift the limit of 2 CPUs per container \(docker\.limits\.maxCpus\)/],
          // A period of 1000 under a quota of 100000 made 100 CPUs on this engine.
          [['--cpu-period', '1000'], /must give both \(or use --cpus\)/],
          [['--cpu-rt-runtime', '950000'], /--cpu-rt-runtime/],
          [['--memory-swap', '-1'], /would lift/],
          [['--pids-limit', '-1'], /PidsLimit \(--pids-limit; in compose: pids_limit\) -1 would lift/],
          [['--cpus', '3'], /of 3 CPUs is above the limit of 2 CPUs/],
        ];
        for (const [flags, why] of attempts) {
          const r = await alice.docker(['update', ...flags, c]);
          assert.notEqual(r.code, 0, `docker update ${flags.join(' ')} succeeded`);
          assert.match(r.stderr, why);
          assert.equal(await cpuCgroup(c), '100000 100000', `the cgroup's CPU quota changed after docker update ${flags.join(' ')}`);
        }
        // Positive control: the read follows an update the limits allow.
        await ok(alice.docker(['update', '--cpus', '0.5', c]), 'update --cpus 0.5');
        assert.equal(await cpuCgroup(c), '50000 100000');
      } finally {
        await engineDocker(['rm', '-f', c]);
      }
    });

    it('ulimits within the caps run: nofile and memlock below docker.limits.maxNofile and maxMemlock', async () => {
      const own = await ok(alice.docker(['run', '--rm', '--ulimit', 'nofile=1024:4096', '--ulimit', 'memlock=65536:65536', IMAGE(), 'sh', '-c', 'ulimit -n; ulimit -l']), 'run --ulimit');
      assert.deepEqual(own.trim().split('\n'), ['1024', '64']);
    });

    it('alice: docker exec -d runs detached', async () => {
      const c = `detached-${t}`;
      await ok(alice.docker(['run', '-d', '--name', c, IMAGE(), 'sleep', '300']), 'run');
      try {
        await ok(alice.docker(['exec', '-d', c, 'sh', '-c', 'echo detached > /tmp/d']), 'exec -d');
        await new Promise((r) => setTimeout(r, 500));
        assert.match(await ok(alice.docker(['exec', c, 'cat', '/tmp/d']), 'exec cat'), /detached/);
      } finally {
        await engineDocker(['rm', '-f', c]);
      }
    });
  });

  it('an application credential keeps working after its user changes their password (Keystone revokes the tokens, not the credential)', async function () {
    this.timeout(120_000);
    const name = `e2e-acpw-${tag}`;
    const first = `pw-${randomBytes(12).toString('hex')}`;
    const { userId, projectId } = await createUserWithProject(name, first);
    let ac: { id: string; secret: string } | undefined;
    try {
      const token = await passwordToken(name, first, name);
      ac = await createApplicationCredential(token, userId, `docker-pw-${tag}`);
      const user = new DockerUser(sharedGateway().port, { Authorization: `Basic ${Buffer.from(`${ac.id}:${ac.secret}`).toString('base64')}` });
      await ok(user.docker(['ps']), 'docker ps with Basic before the password change');
      await changeOwnPassword(userId, token, first, `pw-${randomBytes(12).toString('hex')}`);
      // Once the gateway's cache of the exchanged token has lapsed, Keystone answers that the token was revoked.
      await new Promise((r) => setTimeout(r, (E2E_CACHE_TTL_SECONDS + 2) * 1000));
      await ok(user.docker(['ps']), 'docker ps with the same application credential after the password change');
    } finally {
      if (ac !== undefined) await deleteApplicationCredential(userId, ac.id);
      await deleteUser(userId);
      await deleteProject(projectId);
    }
  });

  it('an application credential with access rules is refused with 403 saying why, for docker and kubectl alike (not "token expired or revoked")', async function () {
    this.timeout(60_000);
    const t = await issueToken('alice', 'alpha');
    const rules = [{ service: 'identity', method: 'GET', path: '/v3/users/*' }];
    const ac = await createApplicationCredential(t.token, t.userId, `docker-rules-${tag}`, undefined, rules);
    try {
      const user = new DockerUser(sharedGateway().port, { Authorization: `Basic ${Buffer.from(`${ac.id}:${ac.secret}`).toString('base64')}` });
      const denied = await user.docker(['ps']);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /application credential with access rules/);
      const { token } = await applicationCredentialToken(ac.id, ac.secret);
      const k8s = await httpsGet(`${sharedGateway().url}/k8s/api/v1/namespaces/os-alpha/pods`, { 'X-Auth-Token': token });
      assert.equal(k8s?.status, 403, k8s?.body);
      assert.match(JSON.parse(k8s?.body ?? '{}').message, /access rules/);
    } finally {
      await deleteApplicationCredential(t.userId, ac.id);
    }
  });

  it('an application credential in Authorization: Basic through HttpHeaders works', async function () {
    this.timeout(60_000);
    const t = await issueToken('alice', 'alpha');
    const ac = await createApplicationCredential(t.token, t.userId, `docker-${tag}`);
    const user = new DockerUser(sharedGateway().port, { Authorization: `Basic ${Buffer.from(`${ac.id}:${ac.secret}`).toString('base64')}` });
    const out = await ok(user.docker(['run', '--rm', IMAGE(), 'echo', 'via-application-credential']), 'docker run with Basic');
    assert.match(out, /via-application-credential/);
    const wrong = new DockerUser(sharedGateway().port, { Authorization: `Basic ${Buffer.from(`${ac.id}:wrong`).toString('base64')}` });
    const denied = await wrong.docker(['ps']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /application credential/);
    const record = await auditRecordMatching(new Date(Date.now() - 60_000), (r) => r.coe === 'docker' && r.applicationCredentialId === ac.id);
    assert.equal(record.user?.name, 'alice');
  });
});
