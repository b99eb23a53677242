import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { assertDescriptorsBack, assertNothingCountedOpen, openFds } from '../support/descriptors.js';
import { DockerUser, engineDocker } from '../support/docker-cli.js';
import { e2eEnv } from '../support/env.js';
import { httpsGet, sharedGateway } from '../support/gateway-process.js';
import { issueToken } from '../support/keystone.js';
import { run } from '../support/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const service = (name: string, action: string, timeoutMs = 150_000) => run(path.resolve('test/e2e/env/service'), [name, action], { timeoutMs });

/**
 * The shared Docker engine restarted under a tenant's `docker logs -f` (issue 8). Restarting dockerd stops every
 * container on it, the kubelet's pods too, so this runs after the other specs (listed in .mocharc.e2e.json before the
 * secrets check) and puts the engine and the node back before it ends.
 */
describe('dockerd restarted during docker logs -f (real dockerd, docker CLI, gateway process)', function () {
  const name = `restart-${randomBytes(3).toString('hex')}`;

  after(async function () {
    this.timeout(300_000);
    await service('dockerd', 'start');
    // The kubelet reconnects to the engine by itself; `start` only restarts it when the node is not Ready.
    await service('kubelet', 'start', 200_000);
    await engineDocker(['rm', '-f', name]);
  });

  it('the follow ends instead of hanging, the gateway says what is wrong while the engine is away, leaks nothing, and docker works again', async function () {
    this.timeout(300_000);
    const gw = sharedGateway();
    const { token } = await issueToken('alice', 'alpha');
    const alice = new DockerUser(gw.port, { 'X-Auth-Token': token });
    const ok = async (args: string[]): Promise<string> => {
      const r = await alice.docker(args);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
      return r.stdout;
    };
    await ok(['run', '-d', '--name', name, e2eEnv().busyboxImage, 'sh', '-c', 'i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done']);
    const logs = alice.background(['logs', '-f', name]);
    try {
      await logs.waitFor((out) => /line-3\n/.test(out), 20_000, 'logs -f');
      await sleep(500);
      const baseline = openFds(gw.pid);

      // As a service manager restarts it: TERM to dockerd alone, which stops its containers and exits.
      const term = await service('dockerd', 'term', 90_000);
      assert.equal(term.code, 0, term.stderr);
      await logs.waitFor(() => logs.child.exitCode !== null || logs.child.signalCode !== null, 30_000, 'docker logs -f to end once the engine went away');
      const seen = logs.stdout.length;

      // While the engine is away: the gateway is alive, says in /readyz what is down but stays ready (kubectl users
      // are still served, and every replica shares the engine), and tells docker users what is wrong.
      assert.equal((await httpsGet(`${gw.url}/healthz`))?.status, 200, 'the gateway is alive');
      const ready = await httpsGet(`${gw.url}/readyz`);
      assert.equal(ready?.status, 200, 'an engine that is away makes no replica better than another');
      const checks = (JSON.parse(ready?.body ?? '{}') as { checks: Record<string, { ok: boolean; detail: string }> }).checks;
      assert.equal(checks.docker?.ok, false);
      assert.match(checks.docker?.detail ?? '', /^engine unreachable \((ENOENT|ECONNREFUSED)\)$/);
      assert.equal(checks.k8s?.ok, true);
      const ps = await alice.docker(['ps'], { timeoutMs: 60_000 });
      assert.notEqual(ps.code, 0);
      assert.match(ps.stderr, /upstream unreachable|did not complete a connection/);

      const start = await service('dockerd', 'start');
      assert.equal(start.code, 0, start.stderr);
      assert.ok(seen > 0);

      // The engine is back: the same gateway process serves it at once; the container can be followed again.
      const listed = await ok(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Names}} {{.State}}']);
      assert.match(listed, new RegExp(`${name} exited`));
      await ok(['start', name]);
      const again = alice.background(['logs', '-f', '--tail', '1', name]);
      try {
        await again.waitFor((out) => /line-\d+\n/.test(out), 20_000, 'logs -f after the restart');
      } finally {
        await again.stop();
      }
      await ok(['rm', '-f', name]);
      await assertDescriptorsBack(gw.pid, baseline, 'the engine restart');
      await assertNothingCountedOpen(gw.metricsUrl, 'docker');
    } finally {
      await logs.stop();
    }
  });
});
