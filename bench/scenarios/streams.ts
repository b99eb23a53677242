import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DockerUser, dockerTlsEnv } from '../../test/e2e/support/docker-cli.js';
import { adminKubectl, mustSucceed, tenantKubeconfig } from '../../test/e2e/support/kubectl.js';
import { run } from '../../test/e2e/support/run.js';
import { apply, tenantNamespace } from '../lib/cluster.js';
import { alternate, summarize, type CaseResult } from '../lib/measure.js';
import { treeCpuSeconds } from '../lib/processes.js';
import { BEFORE_ENTRY, impersonatingKubeconfig, startGateway, startKubectlProxy, startNginx, type World } from '../lib/world.js';
import type { BenchOptions } from './options.js';

const NAMESPACE = 'bench-stream';

/** A kubeconfig for a plain-HTTP server that needs no credentials (kubectl proxy). */
function plainKubeconfig(world: World, server: string): string {
  const file = path.join(world.dir, `plain-${new URL(server).port}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'proxy', cluster: { server } }],
      users: [{ name: 'none', user: {} }],
      contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'none' } }],
      'current-context': 'proxy',
    }),
  );
  return file;
}

/** Seconds for a command that reads `input` to its end; the payload's size over that is the throughput. */
async function timed(what: string, command: () => ReturnType<typeof run>): Promise<number> {
  const started = performance.now();
  const r = await command();
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}`);
  return (performance.now() - started) / 1000;
}

/**
 * MB/s of one transfer and, for a proxy, its own CPU per MB (steadier than MB/s on a shared machine, and what the
 * proxy takes from the apiserver, kubelet and engine on the same cores).
 */
async function throughput(mb: number, pid: number | undefined, transfer: () => Promise<number>): Promise<Record<string, number>> {
  const before = pid !== undefined && pid > 0 ? treeCpuSeconds(pid) : Number.NaN;
  const seconds = await transfer();
  const metrics: Record<string, number> = { mbPerS: mb / seconds };
  if (pid !== undefined && pid > 0) metrics.cpuMsPerMb = ((treeCpuSeconds(pid) - before) * 1000) / mb;
  return metrics;
}

/**
 * Scenario 5: bytes through upgraded connections: `kubectl exec -i ... cat >/dev/null` (SPDY or WebSocket straight
 * to the apiserver, through the gateway, nginx with TLS both ways, and kubectl proxy with plain HTTP to kubectl)
 * and `docker run -i` (the hijacked attach stream on the engine's socket, on its own TLS endpoint, through the
 * gateway and through nginx with TLS to the CLI). The commands' start-up is included, the same for every target.
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
  const before = BEFORE_ENTRY === undefined ? undefined : await startGateway(world, { upstream: 'apiserver', tls: true, tenancy: true, entry: BEFORE_ENTRY, name: 'gateway, before' });
  const nginx = await startNginx(world, { url: world.env.kubeServer, bearer: world.gatewaySaToken }, true);
  const kubectlProxy = await startKubectlProxy(world, { streams: true });
  const payload = randomBytes(options.streamBytes);
  const mb = options.streamBytes / 1e6;
  // The gateway, and with ZGW_BENCH_BEFORE another build of it beside, each reached the way tenants reach it.
  const gateways = [gateway, ...(before !== undefined ? [before] : [])];
  const kubeconfigs: Array<{ name: string; file: string; pid?: number }> = [
    { name: 'direct', file: impersonatingKubeconfig(world) },
    ...gateways.map((g) => ({ name: g.name, file: tenantKubeconfig(g.base.replace(/\/k8s$/, ''), world.token, NAMESPACE), pid: g.pid })),
    { name: 'nginx', file: impersonatingKubeconfig(world, { server: nginx.base, ca: world.env.tlsCa }), pid: nginx.pid },
    { name: 'kubectl proxy', file: plainKubeconfig(world, kubectlProxy.base), pid: kubectlProxy.pid },
  ];
  const kubectlEnv = { PATH: process.env.PATH ?? '', HOME: world.dir };
  const execThrough = (k: (typeof kubeconfigs)[number], input: Buffer): Promise<number> =>
    timed(`kubectl exec through ${k.name}`, () =>
      run(world.kubectl, ['--kubeconfig', k.file, 'exec', '-i', '-n', NAMESPACE, 'bench-sink', '--', 'sh', '-c', 'cat > /dev/null'], {
        env: kubectlEnv,
        input,
        timeoutMs: 600_000,
      }),
    );
  // Warm: the gateway's first request of a token asks Keystone, which is not what a stream costs.
  for (const k of kubeconfigs) await execThrough(k, Buffer.alloc(0));
  const exec = await alternate(kubeconfigs, options.runs, (k) => throughput(mb, k.pid, () => execThrough(k, payload)));

  // The engine's socket (no TLS: the limit), its own TLS endpoint (what a remote user of a bare engine has), and the
  // proxies with TLS towards the CLI.
  const engineNginx = await startNginx(world, { url: `unix://${world.env.dockerSocket}` }, true);
  const dockers: Array<{ name: string; env: Record<string, string>; pid?: number }> = [
    { name: 'direct', env: { PATH: process.env.PATH ?? '', HOME: world.dir, DOCKER_HOST: `unix://${world.env.dockerSocket}` } },
    { name: 'engine TLS', env: dockerTlsEnv(world.env.dockerTls.host, { client: { cert: world.env.dockerTls.clientCert, key: world.env.dockerTls.clientKey } }) },
    ...gateways.map((g) => ({ name: g.name, env: new DockerUser(Number(new URL(g.base).port), { 'X-Auth-Token': world.token }).env, pid: g.pid })),
    { name: 'nginx', env: dockerTlsEnv(engineNginx.base.replace(/^https:/, 'tcp:')), pid: engineNginx.pid },
  ];
  const runThrough = (d: (typeof dockers)[number], input: Buffer): Promise<number> =>
    timed(`docker run -i through ${d.name}`, () =>
      run('docker', ['run', '-i', '--rm', world.env.busyboxImage, 'sh', '-c', 'cat > /dev/null'], { env: d.env, input, timeoutMs: 600_000 }),
    );
  for (const d of dockers) await runThrough(d, Buffer.alloc(0));
  const attach = await alternate(dockers, options.runs, (d) => throughput(mb, d.pid, () => runThrough(d, payload)));
  return [
    ...kubeconfigs.map((k) => summarize('5 streams', `kubectl exec -i, ${mb.toFixed(0)} MB`, k.name, exec.get(k.name) ?? [])),
    ...dockers.map((d) => summarize('5 streams', `docker run -i (attach), ${mb.toFixed(0)} MB`, d.name, attach.get(d.name) ?? [])),
  ];
}
