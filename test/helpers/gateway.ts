import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { KeystoneDouble } from './keystone-double.js';
import { LineCollector, MemoryAudit } from './memory-audit.js';
import { RecordingUpstream } from './recording-upstream.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly audit: MemoryAudit;
  /** The gateway's log lines when `captureLogs` was set. */
  readonly logs: LineCollector;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  readonly keystoneUrl: string;
  /** The apiserver URL the kubeconfig names. */
  readonly upstreamUrl: string;
  /**
   * Several clusters instead (k8s.clusters, upstreamUrl unused): each with a kubeconfig of its own whose token is
   * `gateway-sa-token-<name>`, and more keys of its list item (`projectTags: [west]`).
   */
  readonly clusters?: ReadonlyArray<{ readonly name: string; readonly upstreamUrl: string; readonly yaml?: string }>;
  readonly tls?: boolean;
  /** More keys inside listen.tls, e.g. `clientCaFile: /x, reloadIntervalSeconds: 0.2`. */
  readonly tlsExtra?: string;
  /** More keys inside keystone, each line indented by two spaces. */
  readonly keystoneYaml?: string;
  /** More keys inside listen, each line indented by two spaces. */
  readonly listenYaml?: string;
  readonly extraYaml?: string;
  /** More keys inside the k8s section, each line indented by two spaces. */
  readonly k8sYaml?: string;
  readonly graceSeconds?: number;
  /** keystone.timeoutSeconds (2 unless given). */
  readonly keystoneTimeoutSeconds?: number;
  /** Log at info into `logs` instead of dropping everything. */
  readonly captureLogs?: boolean;
  /** Clocks and timeouts the test moves or shortens (GatewayOptions). */
  readonly timing?: Timing;
}

/** The parts of GatewayOptions with which tests move time by hand. */
export type Timing = Pick<GatewayOptions, 'now' | 'delay' | 'tlsHandshakeTimeoutMs'>;

/** A throwaway self-signed certificate for 127.0.0.1, made with openssl. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

/** The real gateway, in-process, configured like production but against test doubles. */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-test-'));
  const kubeconfigFor = (file: string, server: string, token: string): string => {
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'up', cluster: { server, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'gw', user: { token } }],
        contexts: [{ name: 'up', context: { cluster: 'up', user: 'gw' } }],
        'current-context': 'up',
      }),
    );
    return file;
  };
  const k8sSource =
    options.clusters === undefined
      ? [`  kubeconfig: ${kubeconfigFor(path.join(dir, 'kubeconfig'), options.upstreamUrl, 'gateway-sa-token')}`]
      : [
          '  clusters:',
          ...options.clusters.flatMap((c) => [
            `    - name: ${c.name}`,
            `      kubeconfig: ${kubeconfigFor(path.join(dir, `kubeconfig-${c.name}`), c.upstreamUrl, `gateway-sa-token-${c.name}`)}`,
            ...(c.yaml !== undefined ? [`      ${c.yaml}`] : []),
          ]),
        ];
  const tls = options.tls ? selfSignedCert(dir) : undefined;
  const yaml = [
    'listen:',
    '  host: 127.0.0.1',
    '  port: 0',
    ...(tls ? [`  tls: {certFile: ${tls.cert}, keyFile: ${tls.key}${options.tlsExtra ? `, ${options.tlsExtra}` : ''}}`] : []),
    ...(options.listenYaml !== undefined ? [options.listenYaml] : []),
    'keystone:',
    `  authUrl: ${options.keystoneUrl}`,
    '  serviceCredentials: {username: gateway, password: "${GATEWAY_PASSWORD}", userDomainName: Default, projectName: service, projectDomainName: Default}',
    `  timeoutSeconds: ${options.keystoneTimeoutSeconds ?? 2}`,
    ...(options.keystoneYaml !== undefined ? [options.keystoneYaml] : []),
    'k8s:',
    ...k8sSource,
    ...(options.k8sYaml !== undefined ? [options.k8sYaml] : []),
    'log: {level: silent}',
    `shutdown: {graceSeconds: ${options.graceSeconds ?? 1}}`,
    options.extraYaml ?? '',
  ].join('\n');
  const config = parseConfig(yaml, { GATEWAY_PASSWORD: 'service-password' });
  const audit = new MemoryAudit();
  const logs = new LineCollector();
  const logger = options.captureLogs ? createLogger('debug', logs) : silentLogger();
  const gateway = await createGateway(config, { version: 'test', logger, audit, ...options.timing });
  const address: AddressInfo = await gateway.listen();
  return {
    gateway,
    port: address.port,
    dir,
    audit,
    logs,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    stop: async () => {
      await gateway.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The real gateway, in-process, serving only /docker against an engine socket (a fake one in tests). */
export async function startDockerTestGateway(
  keystoneUrl: string,
  socketPath: string,
  dockerYaml = '',
  timing: Timing = {},
): Promise<{ base: string; port: number; gateway: Gateway; stop(): Promise<void> }> {
  const config = parseConfig(
    [
      'listen: {host: 127.0.0.1, port: 0}',
      'keystone:',
      `  authUrl: ${keystoneUrl}`,
      '  serviceCredentials: {applicationCredentialId: gw, applicationCredentialSecret: s}',
      `docker: {host: "unix://${socketPath}"${dockerYaml ? `, ${dockerYaml}` : ''}}`,
      'log: {level: silent}',
    ].join('\n'),
    {},
  );
  const gateway = await createGateway(config, { version: 'test', logger: silentLogger(), audit: new MemoryAudit(), ...timing });
  const port = ((await gateway.listen()) as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}/docker/v1.41`, port, gateway, stop: () => gateway.shutdown() };
}

/** A gateway with its two doubles (Keystone and a recording apiserver), started together and stopped together. */
export interface GatewayWithDoubles {
  readonly keystone: KeystoneDouble;
  readonly upstream: RecordingUpstream;
  readonly gw: TestGateway;
  stop(): Promise<void>;
}

export async function startGatewayWithDoubles(options: Omit<TestGatewayOptions, 'keystoneUrl' | 'upstreamUrl'>): Promise<GatewayWithDoubles> {
  const keystone = await new KeystoneDouble().start();
  const upstream = await new RecordingUpstream().start();
  const gw = await startTestGateway({ ...options, keystoneUrl: keystone.url, upstreamUrl: upstream.url });
  return {
    keystone,
    upstream,
    gw,
    stop: async () => {
      await gw.stop();
      await upstream.stop();
      await keystone.stop();
    },
  };
}

/** What `gatewayForSuite` starts: read its fields inside the tests (they are set in the suite's `before`). */
export interface SuiteWorld {
  readonly keystone: KeystoneDouble;
  readonly upstream: RecordingUpstream;
  readonly gw: TestGateway;
}

/**
 * A Keystone double knowing alice, a recording apiserver and a test gateway in front of them, started before the
 * calling suite's tests and stopped after them.
 */
export function gatewayForSuite(options: Omit<TestGatewayOptions, 'keystoneUrl' | 'upstreamUrl'> = {}): SuiteWorld {
  const world = {} as { keystone: KeystoneDouble; upstream: RecordingUpstream; gw: TestGateway };
  before(async () => {
    world.keystone = await KeystoneDouble.withAlice();
    world.upstream = await new RecordingUpstream().start();
    world.gw = await startTestGateway({ keystoneUrl: world.keystone.url, upstreamUrl: world.upstream.url, ...options });
  });
  after(async () => {
    await world.gw.stop();
    await world.upstream.stop();
    await world.keystone.stop();
  });
  return world;
}
