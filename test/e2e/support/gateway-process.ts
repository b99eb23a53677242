import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { e2eEnv } from './env.js';

export interface GatewayProcess {
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  readonly auditFile: string;
  readonly metricsUrl: string;
  readonly configFile: string;
  /** The gateway process, for its open file descriptors (/proc/<pid>/fd). */
  readonly pid: number;
  /** Where this run's part of the log and audit files begins (both files are appended to across runs). */
  readonly logOffset: number;
  readonly auditOffset: number;
  stop(): Promise<void>;
}

/** Ports this process has handed out: the kernel may offer a just-closed port again before its taker binds it. */
const handedOut = new Set<number>();

/**
 * A port free on 127.0.0.1 now and not handed out before by this process (the bench uses it too). A gateway given
 * the same port for its listener and its metrics, asked for one after the other, failed to start.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(p));
      });
      srv.on('error', reject);
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** GET over HTTPS trusting the e2e CA; resolves with the status, or undefined when nothing answers. */
export function httpsGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> } | undefined> {
  const ca = readFileSync(e2eEnv().tlsCa);
  return new Promise((resolve) => {
    const req = https.get(url, { ca, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export interface GatewayProcessOptions {
  readonly cacheTtlSeconds: number;
  /** More settings for the keystone section, as YAML lines (`revocationPollSeconds: 2`). */
  readonly keystone?: readonly string[];
  /** More settings for the k8s and docker sections, as YAML lines (`responseHeaderTimeoutSeconds: 3`). */
  readonly k8s?: readonly string[];
  /** k8s.clusters, as YAML lines below it, instead of the e2e cluster's kubeconfig alone. */
  readonly k8sClusters?: readonly string[];
  readonly docker?: readonly string[];
  /** docker.limits.maxContainersPerProject (50 unless given). */
  readonly maxContainersPerProject?: number;
  /** docker.sharedImages: the e2e busybox (every spec's image, which no registry serves) unless given. */
  readonly sharedImages?: readonly string[];
  /** Another Docker engine address than the e2e engine's unix socket (the same engine on tcp:// with TLS). */
  readonly dockerEngine?: { readonly host: string; readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string } };
  /** The service password given to the gateway (the right one unless given: a test of a wrong one). */
  readonly servicePassword?: string;
  /** shutdown.graceSeconds (the gateway's default, 25 s, unless given). */
  readonly graceSeconds?: number;
  /** listen.tls.clientCaFile: mutual TLS, clients must present a certificate this CA signed. */
  readonly clientCaFile?: string;
  /** More settings for the listen section, as YAML lines (`firstByteTimeoutSeconds: 2`). */
  readonly listen?: readonly string[];
}

/**
 * The built gateway (`node dist/src/main.js serve --config <file>`) as a child process with a real configuration
 * file: TLS from the e2e CA, the real Keystone, the real apiserver through the gateway's least-privilege kubeconfig.
 * The service password comes from the environment through ${GATEWAY_PASSWORD}, as in production.
 */
export async function startGateway(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const env = e2eEnv();
  const port = await freePort();
  const metricsPort = await freePort();
  const auditFile = path.join(env.logDir, 'gateway-e2e-audit.log');
  const workDir = path.join(env.dir, 'gateway-e2e');
  mkdirSync(workDir, { recursive: true });
  // One file per gateway: a fault test may run a second gateway beside the shared one.
  const configFile = path.join(workDir, `gateway-${port}.yaml`);
  writeFileSync(
    configFile,
    [
      `listen:`,
      `  host: 127.0.0.1`,
      `  port: ${port}`,
      `  tls: {certFile: ${JSON.stringify(env.tlsCert)}, keyFile: ${JSON.stringify(env.tlsKey)}${options.clientCaFile !== undefined ? `, clientCaFile: ${JSON.stringify(options.clientCaFile)}` : ''}}`,
      ...(options.listen ?? []).map((line) => `  ${line}`),
      `keystone:`,
      `  authUrl: ${env.keystoneUrl}`,
      `  serviceCredentials:`,
      `    username: gateway`,
      '    password: ${GATEWAY_PASSWORD}',
      `    userDomainName: Default`,
      `    projectName: service`,
      `    projectDomainName: Default`,
      `  cacheTtlSeconds: ${options.cacheTtlSeconds}`,
      `  negativeCacheTtlSeconds: 2`,
      ...(options.keystone ?? []).map((line) => `  ${line}`),
      `k8s:`,
      ...(options.k8sClusters === undefined ? [`  kubeconfig: ${JSON.stringify(env.gatewayKubeconfig)}`] : ['  clusters:', ...options.k8sClusters.map((line) => `    ${line}`)]),
      `  tenancy:`,
      `    namespaceTemplate: "os-{project_name}"`,
      `    roleBindings: {admin: admin, member: edit, reader: view}`,
      // The engine's local image, which no registry serves: pods keep imagePullPolicy Never for it.
      `    sharedImages: [${JSON.stringify(env.busyboxImage)}]`,
      ...(options.k8s ?? []).map((line) => `  ${line}`),
      `docker:`,
      `  host: ${options.dockerEngine?.host ?? `unix://${env.dockerSocket}`}`,
      ...(options.dockerEngine?.tls !== undefined ? [`  tls: ${JSON.stringify(options.dockerEngine.tls)}`] : []),
      `  limits: {maxContainersPerProject: ${options.maxContainersPerProject ?? 50}, defaultMemory: 256m, maxMemory: 1g, maxCpus: 2}`,
      `  sharedImages: ${JSON.stringify(options.sharedImages ?? [env.busyboxImage])}`,
      ...(options.docker ?? []).map((line) => `  ${line}`),
      // debug: the access-log lines too, so the final secrets check (final/secrets-in-logs) reads everything.
      `log:`,
      `  level: debug`,
      `audit: {destination: file, file: ${JSON.stringify(auditFile)}}`,
      `metrics: {host: 127.0.0.1, port: ${metricsPort}}`,
      // The page's kubeconfig and ca.pem carry the CA that signed the gateway's certificate.
      `ui: {certificateAuthorityFile: ${JSON.stringify(env.tlsCa)}}`,
      ...(options.graceSeconds !== undefined ? [`shutdown: {graceSeconds: ${options.graceSeconds}}`] : []),
      '',
    ].join('\n'),
  );
  const logFile = path.join(env.logDir, 'gateway-e2e.log');
  const sizeOf = (file: string): number => (existsSync(file) ? statSync(file).size : 0);
  const logOffset = sizeOf(logFile);
  const auditOffset = sizeOf(auditFile);
  const log = createWriteStream(logFile, { flags: 'a' });
  const main = path.resolve('dist/src/main.js');
  const child: ChildProcess = spawn(process.execPath, [main, 'serve', '--config', configFile], {
    env: { PATH: process.env.PATH ?? '', GATEWAY_PASSWORD: options.servicePassword ?? env.passwords.gateway },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const url = `https://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}; see ${logFile}`);
    const res = await httpsGet(`${url}/healthz`);
    if (res?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`the gateway did not become healthy within 20 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port,
    logFile,
    auditFile,
    logOffset,
    auditOffset,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    configFile,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise((resolve) => {
        const done = (): void => {
          rmSync(configFile, { force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('close', done);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

let shared: GatewayProcess | undefined;
export function sharedGateway(): GatewayProcess {
  if (shared === undefined) throw new Error('the e2e gateway is not running (root hook did not start it)');
  return shared;
}
export function setSharedGateway(g: GatewayProcess | undefined): void {
  shared = g;
}

/** A GET (or a POST of `json`) through `gateway` with a bearer token: its status (0: no answer within 30 s), headers and body. */
export function gatewayCall(gateway: GatewayProcess, path: string, token: string, json?: unknown): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const payload = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve) => {
    const headers = { authorization: `Bearer ${token}`, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) };
    const req = https.request(`${gateway.url}${path}`, { method: payload === undefined ? 'GET' : 'POST', ca: readFileSync(e2eEnv().tlsCa), headers, timeout: 30_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
    req.end(payload);
  });
}
