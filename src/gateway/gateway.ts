import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApplicationCredentialExchange } from '../auth/application-credentials.js';
import { Authenticator, authenticatorOptions } from '../auth/authenticator.js';
import { Callers } from '../auth/caller.js';
import { ProjectTags } from '../auth/project-tags.js';
import { RevocationPoller } from '../auth/revocation-poller.js';
import { KeystoneClient } from '../auth/keystone-client.js';
import { ServiceTokenProvider } from '../auth/service-token.js';
import { listenError, readConfiguredFile } from '../config/files.js';
import type { GatewayConfig } from '../config/schema.js';
import { startAdmissionWebhooks, type ClusterAdmissionWebhook } from '../k8s/admission-webhook.js';
import type { AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { exchangeRecorder } from '../routes/exchange.js';
import type { Readiness } from '../routes/mount.js';
import { IMAGE_PULL_ADMISSION_PATH, POD_ADMISSION_PATH, clusterAdmissionPaths, podAdmissionHandler } from '../routes/pod-admission.js';
import type { ErrorReply } from '../routes/respond.js';
import { Sessions } from '../routes/sessions.js';
import { clientErrorAnswer } from './client-error.js';
import { ConnectionTracker } from './connections.js';
import type { Delay } from './delay.js';
import { createDispatcher } from './dispatch.js';
import { gatewayEndpoints, type EndpointOptions } from './endpoints.js';
import { listenOn, metricsListener } from './metrics-server.js';
import { SIGNPOSTS, coeMounts } from './mounts.js';
import { tenantPage } from './page.js';
import { keystoneReadiness, readinessChecks } from './readiness.js';
import { createListener, type GatewayServer } from './server.js';
import { clientCertificateRefusal, reloadTlsOnChange } from './tls.js';
import { whoamiHandler } from './whoami.js';

export interface Gateway {
  readonly server: GatewayServer;
  readonly metrics: Metrics;
  listen(): Promise<AddressInfo>;
  /** Keystone answers and accepts the gateway's service credentials (the keystone check of /readyz). */
  keystoneReady(): Promise<Readiness>;
  /** Every check of /readyz, with its warnings (main.ts logs them once at start). */
  readiness(): Promise<Record<string, Readiness>>;
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
  /**
   * For tests, which move time by hand. `now`: the clock (ms since the epoch) of the token and credential caches and
   * of the rate limits (defaults: Date.now, and performance.now for the rate limits). `delay`: the waits of shutdown's
   * grace period and of the readiness checks (default: setTimeout). `tlsHandshakeTimeoutMs`: see server.ts.
   */
  readonly now?: () => number;
  readonly delay?: Delay;
  readonly tlsHandshakeTimeoutMs?: number;
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
  const { now, delay } = options;
  const serviceToken = new ServiceTokenProvider(keystone, config.keystone.serviceCredentials, logger, now);
  // Keystone project tags are read only when a cluster is open to tagged projects alone.
  const tagsDecide = config.k8s?.clusters.some((c) => c.projectTags !== undefined) === true;
  const projectTags = tagsDecide
    ? new ProjectTags(
        keystone,
        {
          ttlMs: config.keystone.cacheTtlSeconds * 1000,
          refusedTtlMs: config.keystone.negativeCacheTtlSeconds * 1000,
          maxEntries: config.keystone.cacheMaxEntries,
          ...(now !== undefined ? { now } : {}),
        },
        logger,
      )
    : undefined;
  const authenticator = new Authenticator(
    keystone,
    serviceToken,
    { ...authenticatorOptions(config.keystone), metrics, ...(now !== undefined ? { now } : {}), ...(projectTags !== undefined ? { projectTags } : {}) },
    logger,
  );
  const callers = new Callers(authenticator, new ApplicationCredentialExchange(keystone, logger, now));
  const sessions = new Sessions();
  authenticator.onRevoked((identity) => sessions.revoked(identity), () => sessions.identities());
  const revocations = new RevocationPoller(keystone, serviceToken, authenticator, logger, { intervalMs: config.keystone.revocationPollSeconds * 1000, metrics, ...(now !== undefined ? { now } : {}) });
  const tracker = new ConnectionTracker(delay);
  const mounts = await coeMounts(config, {
    callers,
    sessions,
    sessionIdleMs: config.sessions.idleTimeoutSeconds * 1000,
    logger,
    audit,
    metrics,
    onWatch: (res) => tracker.trackWatch(res),
    ...(now !== undefined ? { now } : {}),
  });

  let shuttingDown = false;
  const admission = config.k8s !== undefined ? startAdmissionWebhooks(config.k8s, logger) : [];
  const readiness = (): Promise<Record<string, Readiness>> => readinessChecks(() => keystoneReadiness(keystone, serviceToken), mounts, delay);
  const endpoints = gatewayEndpoints({
    version: options.version,
    mounts: mounts.map((m) => m.name),
    isShuttingDown: () => shuttingDown,
    whoami: whoamiHandler(authenticator, mounts, config.keystone.authUrl, logger),
    admission: admissionEndpoints(admission, config.k8s?.clusters[0]?.name, logger),
    ...(config.ui.enabled ? { page: tenantPage(config.ui, { keystone, authenticator, mounts, tls: config.listen.tls !== undefined, logger }) } : {}),
    readiness,
  });
  const startExchange = exchangeRecorder({ coe: 'gateway', logger, audit, metrics });
  const mutualTls = config.listen.tls?.clientCaFile !== undefined;
  const admit = (req: IncomingMessage): ErrorReply | undefined => {
    const refusal = mutualTls ? clientCertificateRefusal(req.socket, req.url) : undefined;
    return refusal === undefined ? undefined : { status: 401, message: refusal };
  };
  const dispatcher = createDispatcher(mounts, SIGNPOSTS, endpoints, logger, startExchange, admit);

  const server = createListener(config.listen, options.tlsHandshakeTimeoutMs);
  server.on('connection', (socket: Duplex) => tracker.trackSocket(socket));
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    tracker.trackRequest(req, res);
    dispatcher.onRequest(req, res);
  };
  server.on('request', onRequest);
  // Expect: 100-continue is answered by the pipeline once the caller is known (routes/pipeline.ts), not by Node at once.
  server.on('checkContinue', onRequest);
  metrics.observeOpenConnections(() => tracker.openConnections);
  server.on('upgrade', (req, socket, head) => {
    tracker.trackUpgrade(socket);
    dispatcher.onUpgrade(req, socket, head);
  });
  const tlsReload = config.listen.tls !== undefined ? reloadTlsOnChange(server as https.Server, config.listen.tls, logger) : undefined;
  const metricsServer = config.metrics !== undefined ? metricsListener(metrics, logger) : undefined;
  let metricsAt: AddressInfo | undefined;
  // Requests Node's parser refuses never reach a route; the client is told which rule it broke.
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: unknown }, socket) => {
    if (!socket.writable) return socket.destroy();
    socket.end(clientErrorAnswer(err, config.listen.headersTimeoutSeconds * 1000));
  });

  return {
    server,
    metrics,
    metricsAddress: () => metricsAt,
    keystoneReady: () => keystoneReadiness(keystone, serviceToken),
    readiness,
    listen: async () => {
      revocations.start();
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
      revocations.stop();
      for (const { webhook } of admission) webhook.stop();
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

/**
 * Each cluster's webhooks at its own paths; the first cluster's also at /admission/v1/pods[/image-pull-policy], where a
 * single-cluster gateway always served them.
 */
function admissionEndpoints(webhooks: readonly ClusterAdmissionWebhook[], first: string | undefined, logger: Logger): EndpointOptions['admission'] {
  return webhooks.flatMap(({ cluster, webhook }) => {
    const validate = podAdmissionHandler((review) => webhook.validate(review), { podSecurityLevel: webhook.podSecurityLevel, cluster }, logger);
    const mutate = podAdmissionHandler((review) => webhook.mutate(review), { cluster }, logger);
    const own = clusterAdmissionPaths(cluster);
    return [
      { path: own.pods, handle: validate },
      { path: own.imagePull, handle: mutate },
      ...(cluster === first ? [{ path: POD_ADMISSION_PATH, handle: validate }, { path: IMAGE_PULL_ADMISSION_PATH, handle: mutate }] : []),
    ];
  });
}
