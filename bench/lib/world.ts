import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Identity } from '../../src/auth/identity.js';
import { impersonationHeaders } from '../../src/k8s/impersonation.js';
import { selfSubjectReview } from '../../src/k8s/tenant-views.js';
import { e2eEnv, type E2eEnv } from '../../test/e2e/support/env.js';
import { issueToken } from '../../test/e2e/support/keystone.js';
import { headerObject, request } from './http-client.js';
import { freePort, startService, waitForPort, type Service } from './processes.js';

/** Everything the scenarios share: the e2e systems, a tenant and the processes started for the run. */
export interface World {
  readonly env: E2eEnv;
  readonly dir: string;
  /** alice's Keystone token (project alpha): what the gateway is called with. */
  readonly token: string;
  readonly projectId: string;
  readonly gatewaySaToken: string;
  /** The cluster admin's static token (the independent measurement's direct target: no impersonation at all). */
  readonly adminToken: string;
  /** What the gateway sends the apiserver for alice: every target acts as the same tenant, so the apiserver does the same work. */
  readonly impersonation: ReadonlyArray<readonly [string, string]>;
  /** The same without the extras (`impersonation.extras: false`; kubectl's `--as`/`--as-group`). */
  readonly impersonationNoExtras: ReadonlyArray<readonly [string, string]>;
  readonly services: Service[];
  readonly kubectl: string;
}

export async function makeWorld(): Promise<World> {
  const env = e2eEnv();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-bench-'));
  const issued = await issueToken('alice', 'alpha');
  const identity: Identity = {
    user: { id: issued.userId, name: 'alice', domainId: 'default', domainName: 'Default' },
    project: { id: issued.projectId, name: 'alpha', domainId: 'default', domainName: 'Default' },
    // As the gateway reads the token: every role Keystone put in it, implied ones included (the peers must impersonate
    // exactly the groups the gateway does: each group is one more authorization check in the apiserver).
    roles: [...new Set(issued.roles)].sort(),
    expiresAt: new Date(issued.expiresAt),
  };
  const lines = impersonationHeaders(identity, { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true });
  const impersonation: Array<readonly [string, string]> = [];
  for (let i = 0; i < lines.length; i += 2) impersonation.push([lines[i] as string, lines[i + 1] as string]);
  const tokenIn = (kubeconfig: string): string => {
    const token = /token:\s*(\S+)/.exec(readFileSync(kubeconfig, 'utf8'))?.[1];
    if (token === undefined) throw new Error(`no token in ${kubeconfig}`);
    return token;
  };
  const impersonationNoExtras = impersonation.filter(([k]) => !k.startsWith('Impersonate-Extra-'));
  return {
    env,
    dir,
    token: issued.token,
    projectId: issued.projectId,
    gatewaySaToken: tokenIn(env.gatewayKubeconfig),
    adminToken: tokenIn(env.adminKubeconfig),
    impersonation,
    impersonationNoExtras,
    services: [],
    kubectl: env.kubectl,
  };
}

export async function stopAll(world: World): Promise<void> {
  await Promise.all(world.services.splice(0).map((s) => s.stop()));
}

/** Stops one of the world's services (by pid) before the others. */
export async function stopService(world: World, pid: number): Promise<void> {
  const index = world.services.findIndex((s) => s.pid === pid);
  if (index < 0) return;
  const [service] = world.services.splice(index, 1);
  await service?.stop();
}

export interface Endpoint {
  readonly name: string;
  /** Base URL; scenario paths are appended. */
  readonly base: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly pid: number;
}

const MAIN = path.resolve('dist/src/main.js');

/**
 * ZGW_BENCH_BEFORE=<a build of another commit>/dist/src/main.js: scenarios 1 and 2 also measure that build as
 * 'gateway, before', beside this one and the peers in the same run (a before/after on a shared machine).
 */
export const BEFORE_ENTRY = process.env.ZGW_BENCH_BEFORE;

/** The gateway as users run it: its own process, a config file, logs and audit to a file, metrics on. */
export async function startGateway(
  world: World,
  options: {
    upstream: 'apiserver' | { url: string };
    tls: boolean;
    tenancy: boolean;
    /** `k8s.impersonation.extras` (default: the gateway's default). */
    extras?: boolean;
    /** More lines of the `k8s` block (`http2Requests: false`), for experiments. */
    k8s?: readonly string[];
    name?: string;
    /** Another build's dist/src/main.js (the gateway before a change, measured in the same run as after it). */
    entry?: string;
  },
): Promise<Endpoint & { metricsUrl: string }> {
  const port = await freePort();
  const metricsPort = await freePort();
  let kubeconfig = world.env.gatewayKubeconfig;
  if (options.upstream !== 'apiserver') {
    kubeconfig = path.join(world.dir, `fast-${port}.kubeconfig`);
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        // client-node accepts a plain-HTTP server only with skip-verify set (there is nothing to verify).
        clusters: [{ name: 'fast', cluster: { server: options.upstream.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'gw', user: { token: world.gatewaySaToken } }],
        contexts: [{ name: 'fast', context: { cluster: 'fast', user: 'gw' } }],
        'current-context': 'fast',
      }),
    );
  }
  const config = path.join(world.dir, `gateway-${port}.yaml`);
  writeFileSync(
    config,
    [
      `listen: {host: 127.0.0.1, port: ${port}${options.tls ? `, tls: {certFile: ${world.env.tlsCert}, keyFile: ${world.env.tlsKey}}` : ''}}`,
      'keystone:',
      `  authUrl: ${world.env.keystoneUrl}`,
      '  serviceCredentials: {username: gateway, password: "${GATEWAY_PASSWORD}", userDomainName: Default, projectName: service, projectDomainName: Default}',
      'k8s:',
      `  kubeconfig: ${kubeconfig}`,
      ...(options.tenancy ? ['  tenancy: {namespaceTemplate: "os-{project_name}"}'] : []),
      ...(options.extras !== undefined ? [`  impersonation: {extras: ${options.extras}}`] : []),
      ...(options.k8s ?? []).map((line) => `  ${line}`),
      `docker: {host: "unix://${world.env.dockerSocket}", limits: {maxContainersPerProject: 500}, sharedImages: [${JSON.stringify(world.env.busyboxImage)}]}`,
      'log: {level: info}',
      'audit: {destination: stdout}',
      `metrics: {host: 127.0.0.1, port: ${metricsPort}}`,
      '',
    ].join('\n'),
  );
  // ZGW_BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway (written when it stops).
  const nodeArgs = (process.env.ZGW_BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
  const { child, service } = startService('gateway', process.execPath, [...nodeArgs, options.entry ?? MAIN, 'serve', '--config', config], path.join(world.dir, `gateway-${port}.log`), {
    PATH: process.env.PATH ?? '',
    GATEWAY_PASSWORD: world.env.passwords.gateway,
  });
  world.services.push(service);
  await waitForPort(port, 20_000, child, 'gateway');
  return {
    name: options.name ?? 'gateway',
    base: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/k8s`,
    headers: [['X-Auth-Token', world.token]],
    pid: service.pid,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
  };
}

export async function startFastUpstream(world: World): Promise<Endpoint> {
  const port = await freePort();
  const { child, service } = startService('fast-upstream', process.execPath, [path.resolve('dist/bench/fast-upstream.js'), String(port)], path.join(world.dir, 'fast-upstream.log'));
  world.services.push(service);
  await waitForPort(port, 10_000, child, 'fast upstream');
  return { name: 'direct', base: `http://127.0.0.1:${port}`, headers: [], pid: service.pid };
}

export async function startMinimalProxy(world: World, upstreamPort: number): Promise<Endpoint> {
  const port = await freePort();
  const { child, service } = startService('minimal-proxy', process.execPath, [path.resolve('dist/bench/minimal-proxy.js'), String(port), String(upstreamPort)], path.join(world.dir, 'minimal-proxy.log'));
  world.services.push(service);
  await waitForPort(port, 10_000, child, 'minimal proxy');
  return { name: 'node:http proxy', base: `http://127.0.0.1:${port}`, headers: [], pid: service.pid };
}

/** bench/minimal-tls-relay.ts in front of the apiserver, acting as alice like nginx (the client sends the impersonation). */
export async function startMinimalTlsRelay(world: World): Promise<Endpoint> {
  const port = await freePort();
  const { child, service } = startService(
    'minimal-tls-relay',
    process.execPath,
    [path.resolve('dist/bench/minimal-tls-relay.js'), String(port), world.env.kubeServer],
    path.join(world.dir, `minimal-tls-relay-${port}.log`),
    {
      PATH: process.env.PATH ?? '',
      ZGW_RELAY_CERT: world.env.tlsCert,
      ZGW_RELAY_KEY: world.env.tlsKey,
      ZGW_RELAY_UPSTREAM_CA: world.env.kubeCa,
      ZGW_RELAY_BEARER: world.gatewaySaToken,
    },
  );
  world.services.push(service);
  await waitForPort(port, 10_000, child, 'minimal TLS relay');
  return { name: 'node:https relay', base: `https://127.0.0.1:${port}`, headers: world.impersonation, pid: service.pid };
}

/**
 * Debian's nginx as a plain reverse proxy: one worker (the gateway is one Node.js process), keep-alive to the
 * upstream, no access log, no authentication; upgrades (exec, attach) pass through. For the apiserver it adds the
 * gateway's service-account token, and the client's impersonation headers pass through. `unix:///path` is a
 * plain-HTTP upstream on a unix socket (the Docker engine).
 */
export async function startNginx(world: World, upstream: { url: string; bearer?: string }, tls: boolean): Promise<Endpoint> {
  const port = await freePort();
  const prefix = mkdtempSync(path.join(world.dir, 'nginx-'));
  const u = new URL(upstream.url);
  const server = u.protocol === 'unix:' ? `unix:${u.pathname}` : u.host;
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
${process.getuid?.() === 0 ? 'user root root; # the worker runs as the bench does, like every other target (the engine socket is not for nobody)\n' : ''}pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
daemon off;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream up { server ${server}; keepalive 128; }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
    ${tls ? `ssl_certificate ${world.env.tlsCert}; ssl_certificate_key ${world.env.tlsKey};` : ''}
    location / {
      proxy_pass ${scheme}://up;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
      ${upstream.bearer !== undefined ? `proxy_set_header Authorization "Bearer ${upstream.bearer}";` : ''}
      ${u.protocol === 'https:' ? 'proxy_ssl_session_reuse on;' : ''}
    }
  }
}
`,
  );
  const { child, service } = startService('nginx', 'nginx', ['-p', prefix, '-c', conf], path.join(prefix, 'stdout.log'));
  world.services.push(service);
  await waitForPort(port, 10_000, child, 'nginx');
  // Before the apiserver, the client sends alice's impersonation headers (nginx only adds the token).
  const headers = upstream.bearer !== undefined ? world.impersonation : [];
  return { name: 'nginx', base: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, headers, pid: service.pid };
}

/**
 * A kubeconfig that impersonates alice exactly as the gateway does (kubectl's `as` fields), straight to the apiserver
 * or to a plain proxy in front of it (`via`).
 */
export function impersonatingKubeconfig(world: World, via?: { server: string; ca: string }): string {
  const groups = world.impersonation.filter(([k]) => k === 'Impersonate-Group').map(([, v]) => v);
  const extras: Record<string, string[]> = {};
  for (const [k, v] of world.impersonation) {
    if (k.startsWith('Impersonate-Extra-')) (extras[k.slice('Impersonate-Extra-'.length)] ??= []).push(decodeURIComponent(v));
  }
  const user = world.impersonation.find(([k]) => k === 'Impersonate-User')?.[1] ?? '';
  const kubeconfig = path.join(world.dir, `impersonating-${via === undefined ? 'direct' : new URL(via.server).port}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: via?.server ?? world.env.kubeServer, 'certificate-authority': via?.ca ?? world.env.kubeCa } }],
      users: [{ name: 'gw', user: { token: world.gatewaySaToken, as: user, 'as-groups': groups, 'as-user-extra': extras } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'gw' } }],
      'current-context': 'e2e',
    }),
  );
  return kubeconfig;
}

/**
 * `kubectl proxy` (client-go's reverse proxy; plain HTTP to its clients, HTTP/2 to the apiserver), impersonating alice
 * exactly as the gateway does: user, groups and extras from a kubeconfig's `as`, `as-groups` and `as-user-extra`
 * (kubectl proxy sends those, checked against a server that records what it gets). With `extras: false` it runs as
 * the independent measurement ran it: the gateway's kubeconfig and `--as`/`--as-group`, no extras. It refuses exec and
 * attach unless `streams` (its `--reject-paths` default).
 */
export async function startKubectlProxy(world: World, options: { streams?: boolean; extras?: boolean; name?: string } = {}): Promise<Endpoint> {
  const port = await freePort();
  const identity =
    options.extras === false
      ? [
          '--kubeconfig',
          world.env.gatewayKubeconfig,
          ...world.impersonationNoExtras.flatMap(([k, v]) => (k === 'Impersonate-User' ? [`--as=${v}`] : k === 'Impersonate-Group' ? [`--as-group=${v}`] : [])),
        ]
      : ['--kubeconfig', impersonatingKubeconfig(world)];
  const args = ['proxy', ...identity, '--address', '127.0.0.1', '--port', String(port), ...(options.streams === true ? ['--reject-paths=^$'] : [])];
  const { child, service } = startService('kubectl-proxy', world.kubectl, args, path.join(world.dir, `kubectl-proxy-${port}.log`), {
    PATH: process.env.PATH ?? '',
    HOME: world.dir,
  });
  world.services.push(service);
  await waitForPort(port, 20_000, child, 'kubectl proxy');
  return { name: options.name ?? 'kubectl proxy', base: `http://127.0.0.1:${port}`, headers: [], pid: service.pid };
}

/** The e2e kube-apiserver's pid (its CPU per request is then reported like every target's), or -1. */
export function apiserverPid(world: World): number {
  return pidOf(world, 'apiserver');
}

/** etcd's pid (a GET without a resourceVersion is a quorum read from etcd), or -1. */
export function etcdPid(world: World): number {
  return pidOf(world, 'etcd');
}

function pidOf(world: World, name: string): number {
  try {
    return Number(readFileSync(path.join(world.env.dir, 'run', `${name}.pid`), 'utf8').trim());
  } catch {
    return -1;
  }
}

/**
 * The apiserver itself: as the gateway calls it (its token and alice's impersonation headers, extras included unless
 * `as` says otherwise), or as the cluster admin with no impersonation (the independent measurement's direct target).
 */
export function directApiserver(world: World, as: 'tenant' | 'tenant without extras' | 'admin' = 'tenant'): Endpoint {
  const headers: ReadonlyArray<readonly [string, string]> =
    as === 'admin'
      ? [['Authorization', `Bearer ${world.adminToken}`]]
      : [['Authorization', `Bearer ${world.gatewaySaToken}`], ...(as === 'tenant' ? world.impersonation : world.impersonationNoExtras)];
  return { name: 'direct', base: world.env.kubeServer, headers, pid: apiserverPid(world) };
}

/**
 * Throws unless `gateway` impersonates exactly the user, groups and extras the peers are given (world.impersonation):
 * asked through `kubectl auth whoami`'s request, which the gateway answers from the lines it sends. A peer with one
 * group fewer costs the apiserver one authorization check less per request, and the comparison is not like for like.
 */
export async function assertSameTenant(world: World, gateway: Endpoint): Promise<void> {
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1beta1', kind: 'SelfSubjectReview' });
  const url = `${gateway.base}/apis/authentication.k8s.io/v1beta1/selfsubjectreviews`;
  const headers = { ...headerObject(gateway.headers), 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  const { status, text } = await request({ url, method: 'POST', ca: [readFileSync(world.env.tlsCa)], headers }, body, url.startsWith('https:') ? https : http);
  if (status !== 201 && status !== 200) throw new Error(`whoami through ${gateway.name}: HTTP ${status}: ${text}`);
  type UserInfo = { username: string; groups?: string[]; extra?: Record<string, string[]> };
  const userInfo = (review: unknown): UserInfo => (review as { status: { userInfo: UserInfo } }).status.userInfo;
  const info = userInfo(JSON.parse(text));
  // What the apiserver would answer for the peers' lines: the same reading the gateway gives its own.
  const given = userInfo(selfSubjectReview('v1beta1', world.impersonation.flat()).body);
  const asText = (u: UserInfo): string =>
    JSON.stringify([u.username, [...new Set(u.groups ?? [])].sort(), Object.entries(u.extra ?? {}).sort(([a], [b]) => a.localeCompare(b))]);
  if (asText(info) !== asText(given)) {
    throw new Error(`${gateway.name} acts as ${asText(info)} but the peers are given ${asText(given)}: not the same tenant`);
  }
}
