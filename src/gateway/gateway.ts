import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { ApplicationCredentialExchange } from '../auth/application-credentials.js';
import { Authenticator, authenticatorOptions } from '../auth/authenticator.js';
import { GatewayRefusedError, KeystoneClient } from '../auth/keystone-client.js';
import { ServiceTokenProvider } from '../auth/service-token.js';
import { listenError, readConfiguredFile } from '../config/files.js';
import type { GatewayConfig } from '../config/schema.js';
import { startAdmissionWebhook, type AdmissionWebhook } from '../k8s/admission-webhook.js';
import { TenantProvisioner, tenancyApis } from '../k8s/tenancy.js';
import { loadK8sUpstream } from '../k8s/upstream.js';
import type { AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { ProjectRateLimiter } from '../routes/rate-limit.js';
import { engineUpstream } from '../docker/engine.js';
import { dockerMount } from '../routes/docker.js';
import { k8sMount } from '../routes/k8s.js';
import { POD_ADMISSION_PATH, podAdmissionHandler } from '../routes/pod-admission.js';
import type { CoeMount, Readiness } from '../routes/mount.js';
import { ConnectionTracker } from './connections.js';
import { createDispatcher } from './dispatch.js';
import { gatewayEndpoints } from './endpoints.js';
import { listenOn, metricsListener } from './metrics-server.js';
import { whoamiHandler } from './whoami.js';
import { HEADERS_TIMEOUT_MS, createListener, type GatewayServer } from './server.js';
import { clientCertificateRefusal, reloadTlsOnChange } from './tls.js';
import { exchangeRecorder } from '../routes/exchange.js';
import type { ErrorReply } from '../routes/respond.js';
import type https from 'node:https';

export interface Gateway {
  readonly server: GatewayServer;
  readonly metrics: Metrics;
  listen(): Promise<AddressInfo>;
  /** Keystone answers and accepts the gateway's service credentials (the keystone check of /readyz). */
  keystoneReady(): Promise<Readiness>;
  /** Where /metrics is served, once listening; undefined when `metrics` is not configured. */
  metricsAddress(): AddressInfo | undefined;
  /** Stop accepting, let in-flight requests finish within the grace period, then close upgraded sessions. */
  shutdown(): Promise<void>;
}

export interface GatewayOptions {
  readonly version: string;
  readonly logger: Logger;
  readonly audit: AuditTrail;
  /** Defaults to a fresh registry with process metrics. */
  readonly metrics?: Metrics;
}

/** How long shutdown waits, after closing every connection, for their 'close' events (normally one loop turn). */
const SESSIONS_CLOSED_WITHIN_MS = 2000;

/** Assembles the gateway from validated configuration: the one place that knows every part. */
export async function createGateway(config: GatewayConfig, options: GatewayOptions): Promise<Gateway> {
  const { logger, audit } = options;
  const metrics = options.metrics ?? new Metrics();
  const keystone = new KeystoneClient({
    authUrl: config.keystone.authUrl,
    timeoutMs: config.keystone.timeoutSeconds * 1000,
    maxConcurrent: config.keystone.maxConcurrentRequests,
    metrics,
    ...(config.keystone.caFile !== undefined ? { ca: readConfiguredFile('keystone.caFile', config.keystone.caFile) } : {}),
  });
  const serviceToken = new ServiceTokenProvider(keystone, config.keystone.serviceCredentials, logger);
  const authenticator = new Authenticator(keystone, serviceToken, { ...authenticatorOptions(config.keystone), metrics }, logger);
  const provisioned = (action: string, outcome: 'ok' | 'error' = 'ok'): void => metrics.provisioning.inc({ action, outcome });

  const mounts: CoeMount[] = [];
  let admission: AdmissionWebhook | undefined;
  if (config.k8s !== undefined) {
    const k8s = await loadK8sUpstream(config.k8s);
    logger.info({ server: k8s.server, http2Watches: k8s.upstream.http2 !== undefined }, 'kubernetes upstream loaded');
    const sessions = k8s.upstream.http2;
    if (sessions !== undefined) metrics.observeHttp2('k8s', () => sessions.connections);
    const { impersonation, tenancy } = config.k8s;
    if (tenancy !== undefined) admission = startAdmissionWebhook(k8s.kubeConfig, tenancy, impersonation, logger);
    mounts.push(
      k8sMount({
        authenticator,
        k8s,
        impersonation,
        authUrl: config.keystone.authUrl,
        logger,
        audit,
        metrics,
        ...(config.k8s.rateLimit !== undefined ? { rateLimiter: new ProjectRateLimiter('k8s', config.k8s.rateLimit, metrics) } : {}),
        onWatch: (res) => tracker.trackWatch(res),
        ...(tenancy !== undefined
          ? { tenancy: new TenantProvisioner(tenancyApis(k8s.kubeConfig), tenancy, impersonation, logger, provisioned) }
          : {}),
      }),
    );
  }

  if (config.docker !== undefined) {
    mounts.push(
      dockerMount({
        authenticator,
        applicationCredentials: new ApplicationCredentialExchange(keystone, logger),
        engine: engineUpstream(config.docker),
        config: config.docker,
        authUrl: config.keystone.authUrl,
        logger,
        audit,
        metrics,
        ...(config.docker.rateLimit !== undefined ? { rateLimiter: new ProjectRateLimiter('docker', config.docker.rateLimit, metrics) } : {}),
      }),
    );
    logger.info({ host: config.docker.host }, 'docker engine configured');
  }

  const podSecurityLevel = config.k8s?.tenancy?.podSecurity.level;
  if (podSecurityLevel === 'privileged') {
    logger.warn(
      'k8s.tenancy.podSecurity.level is privileged: pods in project namespaces are not checked, and any tenant who may create pods can take over the node they run on',
    );
  } else if (podSecurityLevel !== undefined) {
    // Serving the webhook checks nothing by itself: a gateway run without the Helm chart let a privileged pod in.
    logger.info(
      { podSecurityLevel, webhook: POD_ADMISSION_PATH },
      "pod security: pods in project namespaces are checked only when the apiserver calls this gateway's webhook (the Helm chart registers it when tls.secretName is set; without the chart see the README, \"Pods without the Helm chart\"); clusters from 1.23 also enforce the namespaces' pod-security labels themselves; each review is logged as 'pod admitted' or 'pod refused by pod security'",
    );
  }

  let shuttingDown = false;
  const tracker = new ConnectionTracker();
  const endpoints = gatewayEndpoints({
    version: options.version,
    mounts: mounts.map((m) => m.name),
    isShuttingDown: () => shuttingDown,
    whoami: whoamiHandler(authenticator, mounts, config.keystone.authUrl, logger),
    ...(admission !== undefined
      ? {
          podAdmission: podAdmissionHandler((review) => admission.validate(review), { podSecurityLevel }, logger),
          imagePullAdmission: podAdmissionHandler((review) => admission.mutate(review), {}, logger),
        }
      : {}),
    readiness: async () => {
      const named: Array<[string, Promise<Readiness>]> = [['keystone', keystoneReadiness(keystone, serviceToken)], ...mounts.map((m) => [m.name, m.ready()] as [string, Promise<Readiness>])];
      return Object.fromEntries(await Promise.all(named.map(async ([name, check]) => [name, await answeredWithin(check)] as const)));
    },
  });
  const startExchange = exchangeRecorder({ coe: 'gateway', logger, audit, metrics });
  const mutualTls = config.listen.tls?.clientCaFile !== undefined;
  const admit = (req: IncomingMessage): ErrorReply | undefined => {
    const refusal = mutualTls ? clientCertificateRefusal(req.socket, req.url) : undefined;
    return refusal === undefined ? undefined : { status: 401, message: refusal };
  };
  const dispatcher = createDispatcher(mounts, endpoints, logger, startExchange, admit);

  const server = createListener(config.listen);
  server.on('connection', (socket: Duplex) => tracker.trackSocket(socket));
  server.on('request', (req, res) => {
    tracker.trackRequest(req, res);
    dispatcher.onRequest(req, res);
  });
  server.on('upgrade', (req, socket, head) => {
    tracker.trackUpgrade(socket);
    dispatcher.onUpgrade(req, socket, head);
  });
  const tlsReload = config.listen.tls !== undefined ? reloadTlsOnChange(server as https.Server, config.listen.tls, logger) : undefined;
  const metricsServer = config.metrics !== undefined ? metricsListener(metrics, logger) : undefined;
  let metricsAt: AddressInfo | undefined;
  // Requests Node's parser refuses (smuggling attempts, obs-fold, unknown methods, oversized headers) never reach a
  // route; the client is told which rule it broke (llhttp's reason: a fixed text, nothing of the request echoed).
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: unknown }, socket) => {
    if (!socket.writable) return socket.destroy();
    socket.end(clientErrorAnswer(err));
  });

  return {
    server,
    metrics,
    metricsAddress: () => metricsAt,
    keystoneReady: () => keystoneReadiness(keystone, serviceToken),
    listen: async () => {
      if (metricsServer !== undefined && config.metrics !== undefined) {
        const { port, host } = config.metrics;
        metricsAt = await listenOn(metricsServer, port, host).catch((err: unknown) => {
          throw listenError('metrics.port', host, port, err);
        });
        logger.info({ host: metricsAt.address, port: metricsAt.port }, 'metrics listening (GET /metrics)');
      }
      return new Promise((resolve, reject) => {
        const failed = (err: unknown): void => reject(listenError('listen.port', config.listen.host, config.listen.port, err));
        server.once('error', failed);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', failed);
          const address = server.address() as AddressInfo;
          logger.info({ host: address.address, port: address.port, tls: config.listen.tls !== undefined }, 'gateway listening');
          if (config.listen.tls === undefined) {
            logger.warn('serving plain HTTP: kubectl sends no credentials over HTTP; configure listen.tls for real use');
          }
          resolve(address);
        });
      });
    },
    shutdown: async () => {
      if (shuttingDown) return;
      shuttingDown = true;
      logger.info(tracker.inFlight, 'shutting down: no new connections; waiting for in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      tracker.endWatches();
      await tracker.drain(config.shutdown.graceSeconds * 1000);
      tracker.closeUpgraded();
      server.closeAllConnections();
      tracker.closeAll();
      await closed;
      // Sessions cut just now write their audit records in their 'close' listeners: wait for those before the
      // flush below, after which main.ts exits.
      await tracker.allClosed(SESSIONS_CLOSED_WITHIN_MS);
      for (const m of mounts) m.close();
      admission?.stop();
      keystone.close();
      tlsReload?.stop();
      if (metricsServer?.listening) {
        const closedMetrics = new Promise<void>((resolve) => metricsServer.close(() => resolve()));
        metricsServer.closeAllConnections();
        await closedMetrics;
      }
      audit.flush();
      logger.info('shut down');
    },
  };
}

/** Each readiness check answers within this, so /readyz answers inside the probe's timeout (the chart's: 3 s). */
const READINESS_CHECK_MS = 2000;

function answeredWithin(check: Promise<Readiness>): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${READINESS_CHECK_MS / 1000} s` }), READINESS_CHECK_MS);
  });
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

/**
 * Keystone answers, and accepts the gateway's own service credentials: a gateway whose password is wrong cannot
 * check a single new token, so it is not ready (and says why) rather than failing each tenant with a 503.
 */
async function keystoneReadiness(keystone: KeystoneClient, serviceToken: ServiceTokenProvider): Promise<Readiness> {
  if (!(await keystone.ping())) return { ok: false, detail: 'unreachable' };
  try {
    await serviceToken.get();
  } catch (err) {
    if (err instanceof GatewayRefusedError) return { ok: false, detail: `reachable, but ${err.message}`, blocking: true };
  }
  return { ok: true, detail: 'reachable' };
}

/**
 * The answer to a request Node's parser refused or timed out, written on the raw socket: 431 for oversized headers,
 * 408 for headers that did not arrive within `headersTimeout`, 400 with llhttp's reason for the rest.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException & { reason?: unknown }): string {
  const [status, text, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'request headers too large (the limit is 16 KB in all)']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', `the request's headers did not arrive within ${HEADERS_TIMEOUT_MS / 1000} s`]
        : [400, 'Bad Request', `malformed HTTP request: ${typeof err.reason === 'string' ? err.reason : (err.code ?? 'unreadable')}`];
  const body = JSON.stringify({ error: status, message });
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
