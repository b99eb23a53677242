import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { render, strAt } from '../chart/render.js';
import { sample } from '../helpers/prometheus-text.js';
import { scrape } from './support/descriptors.js';
import { DockerUser, engineDocker, PROJECT_LABEL } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { gatewayCall, sharedGateway, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken, revokeToken } from './support/keystone.js';
import { createUserWithProject, deleteProject, deleteUser, passwordToken, removeProjectRole } from './support/keystone-admin.js';
import { adminKubectl, kubectl, kubectlBackground, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { auditRecordMatching } from './support/observability.js';
import type { Background } from './support/run.js';

/**
 * Issue 25: two gateway processes (two replicas behind one load balancer) on the one real Keystone, apiserver and
 * dockerd. What every replica must agree on lives where both see it: the container quota's lease in the engine,
 * revocations at Keystone (each replica follows its events), fair queuing in the apiserver (API Priority and Fairness).
 */

/** keystone.revocationPollSeconds of the replicas (and revalidateSeconds of the pair that validates again). */
const POLL_SECONDS = 2;

interface Tenant {
  readonly name: string;
  readonly password: string;
  readonly userId: string;
  readonly projectId: string;
  /** The project's namespace (k8s.tenancy namespaceTemplate os-{project_name}). */
  readonly namespace: string;
}

/**
 * What a request to the tenant's own pods answers on `gateway` (0: no answer; a project's first request provisions
 * its namespace, which takes a while on a loaded machine).
 */
async function podsStatus(gateway: GatewayProcess, token: string, namespace: string): Promise<number> {
  return (await gatewayCall(gateway, `/k8s/api/v1/namespaces/${namespace}/pods`, token)).status;
}

/**
 * Asks `gateway` until the token is refused (401), and resolves with how long that took after `since`. The time is
 * measured to be reported, not asserted; the asking stops after a minute (a test timed out must not leave it running).
 */
async function refusedAfter(gateway: GatewayProcess, token: string, namespace: string, since: number): Promise<number> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    assert.ok(Date.now() < giveUpAt, `${gateway.url} still accepts the token a minute later`);
    const status = await podsStatus(gateway, token, namespace);
    if (status === 401) return Date.now() - since;
    assert.ok(status === 200 || status === 0, `a pending revocation answered ${status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('two gateway replicas on one Keystone, apiserver and dockerd (issue 25)', function () {
  this.timeout(180_000);
  const tag = randomBytes(3).toString('hex');
  const tenantGroup = `keystone:e2e-tenants-${tag}`;
  const tenants: Tenant[] = [];
  const replicas: GatewayProcess[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;

  async function tenant(suffix: string): Promise<Tenant> {
    const name = `rep-${tag}-${suffix}`;
    const password = randomBytes(12).toString('hex');
    const { userId, projectId } = await createUserWithProject(name, password);
    const t = { name, password, userId, projectId, namespace: `os-${name}` };
    tenants.push(t);
    return t;
  }

  /**
   * Two replicas: one configuration, as a Deployment's pods have; only the ports differ. A cache TTL far longer than
   * the test, so a token can only stop working in time through what is under test.
   */
  async function startPair(revalidateSeconds: number): Promise<[GatewayProcess, GatewayProcess]> {
    const options = {
      cacheTtlSeconds: 600,
      keystone: [`revocationPollSeconds: ${POLL_SECONDS}`, `revalidateSeconds: ${revalidateSeconds}`],
      maxContainersPerProject: 3,
      k8s: [`impersonation: {tenantGroup: ${JSON.stringify(tenantGroup)}}`],
    };
    const first = await startGateway(options);
    replicas.push(first);
    const second = await startGateway(options);
    replicas.push(second);
    return [first, second];
  }

  before(async function () {
    this.timeout(90_000);
    // No validation again within the test (revalidateSeconds 600): what ends a revoked token here is Keystone's events.
    [a, b] = await startPair(600);
  });

  after(async function () {
    this.timeout(90_000);
    // Every step is tried whatever failed before it (the environment is shared: nothing of ours may stay behind).
    const failures: string[] = [];
    const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (const gw of replicas) await attempt('stop a replica', () => gw.stop());
    for (const t of tenants) {
      await attempt(`remove ${t.name}'s containers`, async () => {
        const owned = await engineDocker(['ps', '-aq', '--filter', `label=${PROJECT_LABEL}=${t.projectId}`]);
        const ids = owned.stdout.split('\n').filter((l) => l !== '');
        if (ids.length > 0) await engineDocker(['rm', '-f', ...ids]);
      });
      await attempt(`delete ${t.namespace}`, () => adminKubectl(['delete', 'namespace', t.namespace, '--wait=false', '--ignore-not-found']));
      await attempt(`delete user ${t.name}`, () => deleteUser(t.userId));
      await attempt(`delete project ${t.name}`, () => deleteProject(t.projectId));
    }
    assert.deepEqual(failures, [], 'cleaning up');
  });

  it('maxContainersPerProject 3: ten docker creates at once, five through each replica, leave exactly 3 on the engine and no lease behind', async function () {
    const q = await tenant('q');
    const token = await passwordToken(q.name, q.password, q.name);
    const viaA = new DockerUser(a.port, { 'X-Auth-Token': token });
    const viaB = new DockerUser(b.port, { 'X-Auth-Token': token });
    // Both replicas know the token first: the race below is the quota's, not two first validations at Keystone.
    await mustSucceed(viaA.docker(['ps', '-a']), 'docker ps through A');
    await mustSucceed(viaB.docker(['ps', '-a']), 'docker ps through B');
    const names = Array.from({ length: 10 }, (_, i) => `rep-${tag}-q${i}`);
    const results = await Promise.all(names.map((n, i) => (i % 2 === 0 ? viaA : viaB).docker(['create', '--name', n, e2eEnv().busyboxImage, 'true'])));
    const created = results.filter((r) => r.code === 0);
    assert.equal(created.length, 3, results.map((r) => `${r.code}: ${r.stderr.trim()}`).join('\n'));
    for (const r of results.filter((x) => x.code !== 0)) {
      assert.match(r.stderr, new RegExp(`project ${q.name} already has 3 containers, the most allowed is 3; remove some first`));
    }
    // Counted on the engine itself, behind both gateways' backs.
    const owned = await engineDocker(['ps', '-aq', '--filter', `label=${PROJECT_LABEL}=${q.projectId}`]);
    assert.equal(owned.stdout.split('\n').filter((l) => l !== '').length, 3, owned.stdout);
    // The lease (a volume in the gateway's reserved name) is released when each create's answer is out: gone soon after.
    const lease = `zun-gateway-lease-${q.projectId}`;
    let left = '';
    for (let i = 0; i < 50; i += 1) {
      left = (await engineDocker(['volume', 'ls', '-q', '--filter', `name=zun-gateway-lease-${q.projectId}`])).stdout.trim();
      if (left === '') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(left, '', `the lease ${lease} was left on the engine`);
  });

  it("a new project's first containers, created through both replicas at the same moment, share the project's one network", async function () {
    // Three projects at once: each one's first create makes its network, through both replicas at once. dockerd 20.10
    // let both creates past CheckDuplicate (its check comes before a create it takes ~100 ms over): two networks, the
    // project's containers split between them. The project's lease in the engine makes it one.
    const fresh = await Promise.all(['n1', 'n2', 'n3'].map((s) => tenant(s)));
    const tokens = await Promise.all(fresh.map((t) => passwordToken(t.name, t.password, t.name)));
    // Both replicas know each token first: what races below is only the create.
    for (const token of tokens) for (const gw of [a, b]) assert.equal((await gatewayCall(gw, '/docker/v1.41/containers/json', token)).status, 200);
    const answers = await Promise.all(
      tokens.flatMap((token) => [a, b].map((gw) => gatewayCall(gw, '/docker/v1.41/containers/create', token, { Image: e2eEnv().busyboxImage, Cmd: ['true'] }))),
    );
    assert.deepEqual(answers.map((r) => r.status), [201, 201, 201, 201, 201, 201], answers.map((r) => r.body).join('\n'));
    for (const [i, t] of fresh.entries()) {
      const nets = await engineDocker(['network', 'ls', '-q', '--no-trunc', '--filter', `label=${PROJECT_LABEL}=${t.projectId}`]);
      const net = nets.stdout.split('\n').filter((l) => l !== '');
      assert.equal(net.length, 1, `${t.name}'s networks: ${nets.stdout}`);
      const ids = answers.slice(2 * i, 2 * i + 2).map((r) => JSON.parse(r.body).Id as string);
      const modes = await engineDocker(['inspect', '-f', '{{.HostConfig.NetworkMode}}', ...ids]);
      assert.deepEqual(modes.stdout.split('\n').filter((l) => l !== ''), [net[0], net[0]]);
    }
  });

  describe('a token revoked at Keystone (DELETE /v3/auth/tokens, what `openstack token revoke` does)', function () {
    let r: Tenant;
    let token: string;
    let other: { token: string; namespace: string };
    const container = `rep-${tag}-attach`;
    const pod = `rep-${tag}-pod`;
    const sessions: Record<'exec' | 'watch' | 'attach' | 'dockerExec' | 'logs', Background | undefined> = {
      exec: undefined,
      watch: undefined,
      attach: undefined,
      dockerExec: undefined,
      logs: undefined,
    };
    let revokedAt = 0;

    before(async function () {
      this.timeout(150_000);
      r = await tenant('r');
      token = await passwordToken(r.name, r.password, r.name);
      const alice = await issueToken('alice', 'alpha');
      other = { token: alice.token, namespace: 'os-alpha' };
      const configA = tenantKubeconfig(a.url, token, r.namespace);
      const configB = tenantKubeconfig(b.url, token, r.namespace);
      // The first request provisions the project's namespace (member -> edit); the pod is the operator's fixture.
      await mustSucceed(kubectl(configA, ['get', 'pods']), 'the first request through replica A');
      await mustSucceed(
        adminKubectl(
          ['apply', '-n', r.namespace, '-f', '-'],
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: pod },
            spec: {
              hostNetwork: true,
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'main', image: e2eEnv().busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
            },
          }),
        ),
        'create the pod',
      );
      await mustSucceed(adminKubectl(['wait', '-n', r.namespace, '--for=condition=Ready', `pod/${pod}`, '--timeout=90s']), 'the pod ready');

      // kubectl exec -i with stdin held open (no tty here: -t would need one) through A, a watch through B.
      sessions.exec = kubectlBackground(configA, ['exec', '-i', pod, '--', 'cat']);
      sessions.exec.child.stdin?.write(`exec-${tag}\n`);
      await sessions.exec.waitFor((out) => out.includes(`exec-${tag}`), 30_000, 'the exec session through A');
      sessions.watch = kubectlBackground(configB, ['get', 'pods', '-w']);
      await sessions.watch.waitFor((out) => out.includes(pod), 30_000, 'the watch through B');

      // docker: a container reading stdin; attach through A, exec -i and logs -f through B.
      const dockerA = new DockerUser(a.port, { 'X-Auth-Token': token });
      const dockerB = new DockerUser(b.port, { 'X-Auth-Token': token });
      await mustSucceed(dockerA.docker(['run', '-d', '-i', '--name', container, e2eEnv().busyboxImage, 'cat']), 'docker run -d -i');
      sessions.attach = dockerA.background(['attach', container]);
      sessions.attach.child.stdin?.write(`attach-${tag}\n`);
      await sessions.attach.waitFor((out) => out.includes(`attach-${tag}`), 30_000, 'docker attach through A');
      sessions.dockerExec = dockerB.background(['exec', '-i', container, 'cat']);
      sessions.dockerExec.child.stdin?.write(`dexec-${tag}\n`);
      await sessions.dockerExec.waitFor((out) => out.includes(`dexec-${tag}`), 30_000, 'docker exec -i through B');
      sessions.logs = dockerB.background(['logs', '-f', container]);
      await sessions.logs.waitFor((out) => out.includes(`attach-${tag}`), 30_000, 'docker logs -f through B');
    });

    after(async () => {
      for (const s of Object.values(sessions)) await s?.stop();
    });

    it(`is refused by both replicas within about revocationPollSeconds (${POLL_SECONDS} s); another user's token keeps working`, async function () {
      this.timeout(60_000);
      // Positive controls: the token works on both, and both have it cached (the sessions above went through both).
      assert.equal(await podsStatus(a, token, r.namespace), 200);
      assert.equal(await podsStatus(b, token, r.namespace), 200);
      await revokeToken(token);
      revokedAt = Date.now();
      const [tookA, tookB] = await Promise.all([refusedAfter(a, token, r.namespace, revokedAt), refusedAfter(b, token, r.namespace, revokedAt)]);
      console.log(`      measured: the revoked token was refused by replica A after ${tookA} ms, by replica B after ${tookB} ms (revocationPollSeconds ${POLL_SECONDS})`);
      assert.equal(await podsStatus(a, other.token, other.namespace), 200);
      assert.equal(await podsStatus(b, other.token, other.namespace), 200);
      for (const gw of [a, b]) {
        const metrics = await scrape(gw.metricsUrl);
        // The gateway's service user may read the events (Keystone's policy identity:list_revoke_events: service role).
        assert.ok(sample(metrics, 'zun_gateway_revocation_polls_total', { outcome: 'ok' }) > 0, 'no successful revocation poll');
        assert.equal(sample(metrics, 'zun_gateway_revocation_polls_total', { outcome: 'forbidden' }), 0);
        assert.ok(sample(metrics, 'zun_gateway_revoked_tokens_total') >= 1, 'no cached token dropped');
      }
    });

    it('the exec session and the watch opened with it end; kubectl get -w prints why (the ERROR event\'s Status, as a row)', async function () {
      this.timeout(60_000);
      assert.ok(revokedAt > 0, 'the token was not revoked (the test before failed)');
      const exited = (s: Background | undefined): Promise<void> =>
        s === undefined ? Promise.reject(new Error('no session')) : s.waitFor(() => s.child.exitCode !== null || s.child.signalCode !== null, 30_000, 'the session to end');
      await exited(sessions.exec);
      await exited(sessions.watch);
      const watch = sessions.watch;
      assert.match(watch?.stdout ?? '', /Failure\s+Unauthorized\s+session ended: token revoked; get a new one/, `kubectl get -w exited ${watch?.child.exitCode}; stdout: ${watch?.stdout}; stderr: ${watch?.stderr}`);
    });

    it('docker attach, docker exec -i and docker logs -f opened with it end', async function () {
      this.timeout(60_000);
      assert.ok(revokedAt > 0, 'the token was not revoked (the test before failed)');
      for (const s of [sessions.attach, sessions.dockerExec, sessions.logs]) {
        assert.ok(s !== undefined);
        await s.waitFor(() => s.child.exitCode !== null || s.child.signalCode !== null, 30_000, `${s.child.spawnargs.slice(1, 3).join(' ')} to end`);
      }
    });

    it('the audit trail says "session ended: token revoked" for each, and each replica counts the sessions it ended', async function () {
      assert.ok(revokedAt > 0, 'the token was not revoked (the test before failed)');
      const since = new Date(revokedAt - 60_000);
      const ended = (predicate: (path: string, kind: string) => boolean) =>
        auditRecordMatching(since, (rec) => rec.reason === 'session ended: token revoked' && rec.user?.id === r.userId && predicate(rec.path, rec.kind), 10_000);
      await ended((p, kind) => kind === 'session' && p.includes(`/namespaces/${r.namespace}/pods/${pod}/exec`));
      await ended((p, kind) => kind === 'request' && p.startsWith(`/k8s/api/v1/namespaces/${r.namespace}/pods?`) && p.includes('watch=true'));
      await ended((p, kind) => kind === 'session' && /\/containers\/[^/]+\/attach/.test(p));
      await ended((p, kind) => kind === 'session' && /\/exec\/[^/]+\/start/.test(p));
      await ended((p, kind) => kind === 'request' && /\/containers\/[^/]+\/logs\?/.test(p) && p.includes('follow=1'));
      const [ma, mb] = await Promise.all([scrape(a.metricsUrl), scrape(b.metricsUrl)]);
      // A: the k8s exec, the docker attach and the wait the docker CLI sends beside it; B: the watch, the docker exec
      // and logs -f.
      assert.equal(sample(ma, 'zun_gateway_sessions_ended_total', { coe: 'k8s', reason: 'revoked' }), 1);
      assert.equal(sample(ma, 'zun_gateway_sessions_ended_total', { coe: 'docker', reason: 'revoked' }), 2);
      assert.equal(sample(mb, 'zun_gateway_sessions_ended_total', { coe: 'k8s', reason: 'revoked' }), 1);
      assert.equal(sample(mb, 'zun_gateway_sessions_ended_total', { coe: 'docker', reason: 'revoked' }), 2);
    });
  });

  it("a role removed from the user on the project (`openstack role remove`, no revocation event): replicas that validate a token in use again (revalidateSeconds 2) refuse it within seconds; another user's keeps working", async function () {
    this.timeout(120_000);
    const [c, d] = await startPair(POLL_SECONDS);
    const x = await tenant('x');
    const token = await passwordToken(x.name, x.password, x.name);
    const alice = await issueToken('alice', 'alpha');
    assert.equal(await podsStatus(c, token, x.namespace), 200);
    assert.equal(await podsStatus(d, token, x.namespace), 200);
    await removeProjectRole(x.projectId, x.userId, 'member');
    const removedAt = Date.now();
    const [tookC, tookD] = await Promise.all([refusedAfter(c, token, x.namespace, removedAt), refusedAfter(d, token, x.namespace, removedAt)]);
    console.log(`      measured: after the role removal the token was refused by one replica after ${tookC} ms, by the other after ${tookD} ms (revalidateSeconds ${POLL_SECONDS})`);
    assert.equal(await podsStatus(c, alice.token, 'os-alpha'), 200);
    assert.equal(await podsStatus(d, alice.token, 'os-alpha'), 200);
    for (const gw of [c, d]) {
      const metrics = await scrape(gw.metricsUrl);
      assert.ok(sample(metrics, 'zun_gateway_token_cache_lookups_total', { result: 'revalidate' }) > 0, 'no validation again counted');
    }
  });

  describe('API Priority and Fairness: the chart\'s FlowSchema on the real apiserver', function () {
    // The chart names its objects <fullname>-tenants; a release name holding the chart's name is the fullname.
    const release = `zun-gateway-apf-${tag}`;
    const name = `${release}-tenants`;
    let applied = false;

    after(async () => {
      if (!applied) return;
      await adminKubectl(['delete', 'flowschema', name, '--ignore-not-found']);
      await adminKubectl(['delete', 'prioritylevelconfiguration', name, '--ignore-not-found']);
    });

    it("applied server-side (flowcontrol v1beta1 on 1.20), it classifies a tenant's request through either replica; the gateway relays the apiserver's X-Kubernetes-PF-FlowSchema-UID", async function () {
      this.timeout(120_000);
      const version = strAt(JSON.parse(await mustSucceed(adminKubectl(['version', '-o', 'json']), 'kubectl version')) as unknown, 'serverVersion', 'gitVersion');
      const rendered = await render({
        release,
        namespace: 'default',
        kubeVersion: version,
        set: { 'flowControl.enabled': 'true', 'flowControl.tenantGroup': tenantGroup },
        showOnly: ['templates/flowcontrol.yaml'],
      });
      assert.equal(strAt(rendered.one('FlowSchema', name), 'apiVersion'), 'flowcontrol.apiserver.k8s.io/v1beta1');
      assert.equal(strAt(rendered.one('PriorityLevelConfiguration', name), 'apiVersion'), 'flowcontrol.apiserver.k8s.io/v1beta1');
      applied = true;
      const out = await mustSucceed(adminKubectl(['apply', '--server-side', '--field-manager=zun-gateway-e2e', '-f', '-'], rendered.text), 'kubectl apply --server-side');
      assert.match(out, new RegExp(`flowschema\\.flowcontrol\\.apiserver\\.k8s\\.io/${name} serverside-applied`));
      assert.match(out, new RegExp(`prioritylevelconfiguration\\.flowcontrol\\.apiserver\\.k8s\\.io/${name} serverside-applied`));
      const uid = (await mustSucceed(adminKubectl(['get', 'flowschema', name, '-o', 'jsonpath={.metadata.uid}']), 'the FlowSchema uid')).trim();
      assert.match(uid, /^[0-9a-f-]{36}$/);

      const alice = await issueToken('alice', 'alpha');
      /** The FlowSchema the apiserver classified a request through `gw` into, as the gateway relays it. */
      const flowSchemaOf = async (gw: GatewayProcess): Promise<string | undefined> => {
        // A loaded shared machine may make Keystone or the apiserver miss a request (503, no answer): ask again.
        for (let i = 0; ; i += 1) {
          const res = await gatewayCall(gw, '/k8s/api/v1/namespaces/os-alpha/configmaps', alice.token);
          if (res.status === 200) {
            const header = res.headers['x-kubernetes-pf-flowschema-uid'];
            return typeof header === 'string' ? header : undefined;
          }
          assert.ok(i < 10 && (res.status === 503 || res.status === 0), `the request through ${gw.url} answered ${res.status}`);
        }
      };
      // The apiserver's flow-control configuration follows its objects asynchronously: ask until it classifies with it.
      for (const gw of [a, b]) {
        let seen = await flowSchemaOf(gw);
        while (seen !== uid) {
          assert.notEqual(seen, undefined, 'the gateway relayed no X-Kubernetes-PF-FlowSchema-UID');
          await new Promise((resolve) => setTimeout(resolve, 250));
          seen = await flowSchemaOf(gw);
        }
      }
      // The control: the same request through a gateway without tenantGroup is classified elsewhere (global-default).
      const plain = await flowSchemaOf(sharedGateway());
      assert.notEqual(plain, undefined);
      assert.notEqual(plain, uid);
    });
  });
});
