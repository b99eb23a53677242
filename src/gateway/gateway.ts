import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { ApplicationCredentialExchange } from '../auth/application-credentials.js';
import { Authenticator, authenticatorOptions } from '../auth/authenticator.js';
import { KeystoneClient } from '../auth/keystone-client.js';
import { ServiceTokenProvider } from '../auth/service-token.js';
import type { GatewayConfig } from '../config/schema.js';
import { TenantProvisioner, tenancyApis } from '../k8s/tenancy.js';
import { loadK8sUpstream } from '../k8s/upstream.js';
import type { Logger } from '../observability/logger.js';
import { engineUpstream } from '../docker/engine.js';
import { dockerMount } from '../routes/docker.js';
import { k8sMount } from '../routes/k8s.js';
import type { CoeMount, Readiness } from '../routes/mount.js';
import { ConnectionTracker } from './connections.js';
import { createDispatcher } from './dispatch.js';
import { gatewayEndpoints } from './endpoints.js';
import { whoamiHandler } from './whoami.js';
import { createListener, type GatewayServer } from './server.js';

export interface Gateway {
  readonly server: GatewayServer;
  listen(): Promise<AddressInfo>;
  /** Stop accepting, let in-flight requests finish within the grace period, then close upgraded sessions. */
  shutdown(): Promise<void>;
}

export interface GatewayOptions {
  readonly version: string;
  readonly logger: Logger;
}

/** Assembles the gateway from validated configuration: the one place that knows every part. */
export async function createGateway(config: GatewayConfig, options: GatewayOptions): Promise<Gateway> {
  const { logger } = options;
  const keystone = new KeystoneClient({
    authUrl: config.keystone.authUrl,
    timeoutMs: config.keystone.timeoutSeconds * 1000,
    ...(config.keystone.caFile !== undefined ? { ca: readFileSync(config.keystone.caFile) } : {}),
  });
  const serviceToken = new ServiceTokenProvider(keystone, config.keystone.serviceCredentials, logger);
  const authenticator = new Authenticator(keystone, serviceToken, authenticatorOptions(config.keystone), logger);

  const mounts: CoeMount[] = [];
  if (config.k8s !== undefined) {
    const k8s = await loadK8sUpstream(config.k8s);
    logger.info({ server: k8s.server }, 'kubernetes upstream loaded');
    const { impersonation, tenancy } = config.k8s;
    mounts.push(
      k8sMount({
        authenticator,
        k8s,
        impersonation,
        authUrl: config.keystone.authUrl,
        logger,
        ...(tenancy !== undefined
          ? { tenancy: new TenantProvisioner(tenancyApis(k8s.kubeConfig), tenancy, impersonation, logger) }
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
      }),
    );
    logger.info({ host: config.docker.host }, 'docker engine configured');
  }

  let shuttingDown = false;
  const tracker = new ConnectionTracker();
  const endpoints = gatewayEndpoints({
    version: options.version,
    mounts: mounts.map((m) => m.name),
    isShuttingDown: () => shuttingDown,
    whoami: whoamiHandler(authenticator, mounts, config.keystone.authUrl, logger),
    readiness: async () => {
      const checks: Record<string, Readiness> = {};
      const [keystoneOk, ...mountChecks] = await Promise.all([keystone.ping(), ...mounts.map((m) => m.ready())]);
      checks.keystone = { ok: keystoneOk, detail: keystoneOk ? 'reachable' : 'unreachable' };
      mounts.forEach((m, i) => {
        checks[m.name] = mountChecks[i] as Readiness;
      });
      return checks;
    },
  });
  const dispatcher = createDispatcher(mounts, endpoints, logger);

  const server = createListener(config.listen);
  server.on('request', (req, res) => {
    tracker.trackRequest(req, res);
    dispatcher.onRequest(req, res);
  });
  server.on('upgrade', (req, socket, head) => {
    tracker.trackUpgrade(socket);
    dispatcher.onUpgrade(req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({ error: status, message: status === 431 ? 'request headers too large' : 'malformed HTTP request' });
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          logger.info({ host: address.address, port: address.port, tls: config.listen.tls !== undefined }, 'gateway listening');
          if (config.listen.tls === undefined) {
            logger.warn('serving plain HTTP: kubectl sends no credentials over HTTP; configure listen.tls for real use');
          }
          resolve(address);
        });
      }),
    shutdown: async () => {
      if (shuttingDown) return;
      shuttingDown = true;
      logger.info(tracker.inFlight, 'shutting down: no new connections; waiting for in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await tracker.drain(config.shutdown.graceSeconds * 1000);
      tracker.closeUpgraded();
      server.closeAllConnections();
      await closed;
      for (const m of mounts) m.close();
      keystone.close();
      logger.info('shut down');
    },
  };
}
