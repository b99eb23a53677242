import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Router } from 'express';
import type { Readiness } from '../routes/mount.js';

export interface EndpointOptions {
  readonly version: string;
  readonly mounts: readonly string[];
  /** Keystone and every upstream; the body names what is wrong but never a secret. */
  readonly readiness: () => Promise<Record<string, Readiness>>;
  readonly isShuttingDown: () => boolean;
  readonly whoami: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /**
   * The admission webhooks (k8s.tenancy), called by the apiserver, each at its path (routes/pod-admission.ts): the
   * validating one and the mutating one (imagePullPolicy: Always) of each cluster. None without tenancy.
   */
  readonly admission?: ReadonlyArray<{ readonly path: string; readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> }>;
  /** The tenants' page (page.ts): GET / for browsers, and /ui. */
  readonly page?: Router;
}

/**
 * The gateway's own small endpoints: discovery, liveness, readiness, whoami, the pod admission webhook. The COE mounts
 * never pass through here.
 */
export function gatewayEndpoints(options: EndpointOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  if (options.page !== undefined) app.use(options.page);

  app.get('/', (_req, res) => {
    res.json({
      name: 'zun-gateway',
      version: options.version,
      endpoints: Object.fromEntries(options.mounts.map((m) => [m, `/${m}`])),
      health: { liveness: '/healthz', readiness: '/readyz' },
    });
  });

  app.get('/whoami', (req, res) => options.whoami(req, res));

  for (const { path, handle } of options.admission ?? []) app.post(path, (req, res) => handle(req, res));

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });

  app.get('/readyz', async (_req, res) => {
    if (options.isShuttingDown()) {
      res.status(503).json({ ready: false, checks: { gateway: { ok: false, detail: 'shutting down' } } });
      return;
    }
    const checks = await options.readiness();
    const ready = Object.values(checks).every((c) => c.ok || c.blocking !== true);
    res.status(ready ? 200 : 503).json({ ready, checks });
  });

  app.use((req, res) => {
    res.status(404).json({
      error: 404,
      message: `no such endpoint: ${req.method} ${req.path}; the gateway serves ${options.mounts.map((m) => `/${m}/...`).join(', ')}`,
    });
  });

  return app;
}
