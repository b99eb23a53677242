import { randomBytes } from 'node:crypto';
import { DockerUser } from '../../test/e2e/support/docker-cli.js';
import { adminKubectl, mustSucceed, tenantKubeconfig } from '../../test/e2e/support/kubectl.js';
import { run } from '../../test/e2e/support/run.js';
import { apply, tenantNamespace } from '../lib/cluster.js';
import { alternate, summarize, type CaseResult } from '../lib/measure.js';
import { impersonatingKubeconfig, startGateway, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

const NAMESPACE = 'bench-stream';

/** Seconds for a command that reads `input` to its end; the payload's size over that is the throughput. */
async function timed(what: string, command: () => ReturnType<typeof run>): Promise<number> {
  const started = performance.now();
  const r = await command();
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}`);
  return (performance.now() - started) / 1000;
}

/**
 * Scenario 5: bytes through upgraded connections: `kubectl exec -i ... cat >/dev/null` (SPDY or WebSocket through
 * the gateway vs straight to the apiserver) and `docker run -i` (the hijacked attach stream through the gateway vs
 * the engine's socket). The commands' start-up is included, the same for both sides.
 */
export async function streams(world: World, options: BenchOptions): Promise<CaseResult[]> {
  await tenantNamespace(NAMESPACE, world.projectId, 'edit');
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench-sink', namespace: NAMESPACE },
    spec: {
      terminationGracePeriodSeconds: 1,
      // The e2e kubelet has no pod network (no CNI): pods share the host's, as in the e2e specs.
      hostNetwork: true,
      containers: [{ name: 'sink', image: world.env.busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '86400'] }],
    },
  });
  await mustSucceed(adminKubectl(['wait', '--for=condition=Ready', 'pod/bench-sink', '-n', NAMESPACE, '--timeout=120s']), 'bench-sink ready');
  const gateway = await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true });
  const payload = randomBytes(options.streamBytes);
  const mb = options.streamBytes / 1e6;
  const gatewayUrl = gateway.base.replace(/\/k8s$/, '');
  const kubeconfigs = [
    { name: 'direct', file: impersonatingKubeconfig(world) },
    { name: 'gateway', file: tenantKubeconfig(gatewayUrl, world.token, NAMESPACE) },
  ];
  const kubectlEnv = { PATH: process.env.PATH ?? '', HOME: world.dir };
  const exec = await alternate(kubeconfigs, options.runs, async (k) => {
    const s = await timed(`kubectl exec through ${k.name}`, () =>
      run(world.kubectl, ['--kubeconfig', k.file, 'exec', '-i', '-n', NAMESPACE, 'bench-sink', '--', 'sh', '-c', 'cat > /dev/null'], {
        env: kubectlEnv,
        input: payload,
        timeoutMs: 600_000,
      }),
    );
    return { mbPerS: mb / s };
  });

  const user = new DockerUser(Number(new URL(gatewayUrl).port), { 'X-Auth-Token': world.token });
  const dockers = [
    { name: 'direct', env: { PATH: process.env.PATH ?? '', HOME: world.dir, DOCKER_HOST: `unix://${world.env.dockerSocket}` } },
    { name: 'gateway', env: user.env },
  ];
  const attach = await alternate(dockers, options.runs, async (d) => {
    const s = await timed(`docker run -i through ${d.name}`, () =>
      run('docker', ['run', '-i', '--rm', world.env.busyboxImage, 'sh', '-c', 'cat > /dev/null'], { env: d.env, input: payload, timeoutMs: 600_000 }),
    );
    return { mbPerS: mb / s };
  });
  return [
    ...kubeconfigs.map((k) => summarize('5 streams', `kubectl exec -i, ${mb.toFixed(0)} MB`, k.name, exec.get(k.name) ?? [])),
    ...dockers.map((d) => summarize('5 streams', `docker run -i (attach), ${mb.toFixed(0)} MB`, d.name, attach.get(d.name) ?? [])),
  ];
}
