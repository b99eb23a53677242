import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Authenticator } from '../auth/authenticator.js';
import { extractToken } from '../auth/credentials.js';
import type { KeystoneClient } from '../auth/keystone-client.js';
import { LoginRelay } from '../auth/login-relay.js';
import { LoginThrottle } from '../auth/login-throttle.js';
import { buildKubeconfig, contextsFor, type ListedCluster } from '../client/kubeconfig-document.js';
import { configError } from '../config/load.js';
import { readConfiguredFile } from '../config/files.js';
import type { UiConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { CoeMount } from '../routes/mount.js';
import { GatewayError } from '../errors.js';
import { gatewayDialect, replyFor, sendError } from '../routes/respond.js';

/**
 * What every answer of the page carries. The page's script and style come from this origin only (no inline code,
 * no third party), it may not be framed, and it leaks no URL to other sites (docs/security.md, "The page").
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Where `npm run build` puts the page (scripts/build-ui.mjs): dist/src/ui beside this module's dist/src/gateway. */
const BUILT_PAGE_DIR = fileURLToPath(new URL('../ui/', import.meta.url));

/** A sign-in form is a few hundred bytes; anything much larger is not one. */
const MAX_SIGN_IN_BODY = '8kb';

export interface PageDependencies {
  readonly keystone: KeystoneClient;
  readonly authenticator: Authenticator;
  readonly mounts: readonly CoeMount[];
  /** The listener serves TLS itself. */
  readonly tls: boolean;
  readonly logger: Logger;
  /** Where the built page is (tests); default: next to the compiled gateway. */
  readonly pageDir?: string;
  readonly now?: () => number;
}

function secured(res: ServerResponse): void {
  for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) res.setHeader(name, value);
}

/**
 * A password typed into the page crosses the network only inside TLS: over plain HTTP the sign-in is taken from this
 * machine only, unless ui.publicUrl says TLS ends in front of the gateway.
 */
export function passwordMayCross(socket: Pick<TLSSocket, 'remoteAddress'> & { encrypted?: boolean }, tlsInFront: boolean): boolean {
  if (socket.encrypted === true || tlsInFront) return true;
  const from = socket.remoteAddress ?? '';
  return from === '::1' || from.startsWith('127.') || from.startsWith('::ffff:127.');
}

/** A Host header that can stand in a URL: a name or address and a port, nothing else. */
const SAFE_HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The tenants' page (src/ui) and its small API under /ui: sign-in relay, sign-out, the kubeconfig download and the
 * CA. GET / answers the page only to a client that prefers HTML; anything else goes on to the JSON discovery. The
 * page has no privilege of its own: what it lists it fetches from /k8s and /docker with the user's token.
 */
export function tenantPage(config: UiConfig, deps: PageDependencies): Router {
  const { logger, authenticator } = deps;
  const pageDir = deps.pageDir ?? BUILT_PAGE_DIR;
  const ca = config.certificateAuthorityFile !== undefined ? readConfiguredFile('ui.certificateAuthorityFile', config.certificateAuthorityFile) : undefined;
  if (ca !== undefined && !ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
    throw configError(`ui.certificateAuthorityFile: ${config.certificateAuthorityFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  const indexFile = `${pageDir}index.html`;
  const index = existsSync(indexFile) ? readFileSync(indexFile) : undefined;
  if (index === undefined) logger.warn({ pageDir }, 'the tenants\' page was not built (npm run build): browsers get a 503 at /, API clients the JSON discovery');
  const { failedSignIns } = config;
  const relay = new LoginRelay({
    keystone: deps.keystone,
    authenticator,
    logger,
    throttle: new LoginThrottle({
      perAddress: failedSignIns.perAddress,
      perUser: failedSignIns.perUser,
      windowMs: failedSignIns.windowSeconds * 1000,
      maxTracked: failedSignIns.maxTracked,
      ...(deps.now !== undefined ? { now: deps.now } : {}),
    }),
    ...(deps.now !== undefined ? { now: deps.now } : {}),
  });
  const k8s = deps.mounts.find((m) => m.name === 'k8s');

  /** The gateway's URL as tenants reach it: configured, or the origin the browser asked when TLS ends here. */
  const publicUrl = (req: IncomingMessage): string | undefined => {
    if (config.publicUrl !== undefined) return config.publicUrl.replace(/\/+$/, '');
    const host = req.headers.host;
    return deps.tls && host !== undefined && SAFE_HOST.test(host) && URL.canParse(`https://${host}`) ? `https://${host}` : undefined;
  };

  /**
   * Refuses a state-changing call another site's page made in the user's browser (Fetch metadata, then Origin).
   * The token travels in a header a cross-site form cannot set, so this guards the sign-in relay above all: no
   * other site may use this page's users' browsers to try passwords.
   */
  const sameOrigin = (req: Request, _res: Response, next: NextFunction): void => {
    const site = req.get('sec-fetch-site');
    const origin = req.get('origin');
    const host = req.get('host');
    const own = [publicUrl(req), host !== undefined && SAFE_HOST.test(host) ? `${deps.tls ? 'https' : 'http'}://${host}` : undefined]
      .filter((o) => o !== undefined && URL.canParse(o))
      .map((o) => new URL(o as string).origin);
    if ((site !== undefined && site !== 'same-origin') || (origin !== undefined && !own.includes(origin))) {
      next(new GatewayError('forbidden', 'this call is only taken from the gateway\'s own page (the request came from another site)'));
      return;
    }
    next();
  };

  const token = (req: Request): string => extractToken(req.rawHeaders, { upgrade: false });

  const router = express.Router();

  router.get('/', (req, res, next) => {
    res.vary('Accept');
    if (req.accepts(['application/json', 'text/html']) !== 'text/html') return next();
    secured(res);
    if (index === undefined) {
      res.status(503).type('text/plain').set('Cache-Control', 'no-store').send("The page was not built: run `npm run build`, then restart the gateway.\n");
      return;
    }
    res.status(200).type('html').set('Cache-Control', 'no-cache').send(index);
  });

  const ui = express.Router();
  ui.use((_req, res, next) => {
    secured(res);
    next();
  });
  // Asset names carry a hash of their content (scripts/build-ui.mjs): cached for a year, never revalidated.
  ui.use('/assets', express.static(`${pageDir}assets`, { index: false, immutable: true, maxAge: 365 * 24 * 3600 * 1000, fallthrough: false, redirect: false }));

  ui.get('/api/setup', (req, res) => {
    res.set('Cache-Control', 'no-store').json({
      server: publicUrl(req) ?? null,
      certificateAuthority: ca !== undefined,
      keystoneUrl: config.keystoneUrl ?? deps.keystone.authUrl,
      engines: deps.mounts.map((m) => m.name),
    });
  });

  ui.get('/ca.pem', (_req, res, next) => {
    if (ca === undefined) return next(new GatewayError('not_found', "this gateway's operator published no CA (ui.certificateAuthorityFile): its certificate should be trusted by your system's CAs"));
    res.status(200).type('application/x-pem-file').set({ 'Cache-Control': 'no-cache', 'Content-Disposition': 'attachment; filename="ca.pem"' }).send(ca);
  });

  const jsonOnly = (req: Request, _res: Response, next: NextFunction): void =>
    next(req.is('application/json') ? undefined : new GatewayError('body_invalid', 'send the sign-in form as application/json', { status: 415 }));

  ui.post('/api/sign-in', sameOrigin, jsonOnly, express.json({ limit: MAX_SIGN_IN_BODY }), async (req, res) => {
    if (!passwordMayCross(req.socket, config.publicUrl !== undefined)) {
      throw new GatewayError('forbidden', 'signing in over plain HTTP would send your password in the clear: open this page at the gateway\'s https:// address');
    }
    const signedIn = await relay.signIn(LoginRelay.parseForm(req.body), req.socket.remoteAddress ?? 'unknown');
    res.set('Cache-Control', 'no-store').status(200).json({
      token: signedIn.token,
      expiresAt: signedIn.identity.expiresAt.toISOString(),
    });
  });

  ui.post('/api/sign-out', sameOrigin, async (req, res) => {
    await relay.signOut(token(req));
    res.set('Cache-Control', 'no-store').status(204).end();
  });

  ui.get('/api/kubeconfig', async (req, res) => {
    if (k8s === undefined) throw new GatewayError('not_found', 'this gateway serves no Kubernetes (/k8s), so there is no kubeconfig for it');
    const identity = await authenticator.authenticate(token(req));
    const server = publicUrl(req);
    if (server === undefined) {
      throw new GatewayError(
        'conflict',
        "this gateway serves plain HTTP, and kubectl sends credentials only over HTTPS: its operator sets ui.publicUrl to the https:// address in front of it",
      );
    }
    // The same contexts `zun-gateway kubeconfig` writes: one per cluster the project may use, or one for /k8s.
    const described = (await k8s.describe(identity, server)) as { namespace?: unknown; clusters?: readonly ListedCluster[] };
    const clusters = contextsFor(described.clusters);
    if (clusters !== undefined && clusters.length === 0) {
      throw new GatewayError('forbidden', "your project may use none of this gateway's Kubernetes clusters (each is open to Keystone projects with certain tags): ask a cloud administrator");
    }
    const namespace = described.namespace;
    const text = buildKubeconfig(
      {
        server,
        certificateAuthorityData: ca,
        namespace: clusters === undefined && typeof namespace === 'string' ? namespace : undefined,
        clusters,
        plugin: { command: 'zun-gateway', args: ['credential'] },
      },
      {},
    );
    res
      .status(200)
      .type('application/yaml')
      .set({ 'Cache-Control': 'no-store', 'Content-Disposition': 'attachment; filename="zun-gateway.kubeconfig"' })
      .send(text);
  });

  ui.use((req, _res, next) => next(new GatewayError('not_found', `no such page resource: ${req.method} /ui${req.path}`)));
  ui.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    sendError(res, gatewayDialect, replyFor(pageError(err, req), logger));
  });
  router.use('/ui', ui);
  return router;
}

/**
 * The refusals of Express's own parts in the project's one error type: the JSON parser's (a form too large or not
 * JSON) and the static files' (an asset that is not there); anything else as it is.
 */
function pageError(err: unknown, req: Request): unknown {
  if (err instanceof GatewayError) return err;
  const { status, type } = err as { status?: unknown; type?: unknown };
  if (type === 'entity.too.large') return new GatewayError('body_too_large', `the sign-in form is larger than ${MAX_SIGN_IN_BODY}`);
  if (type === 'entity.parse.failed') return new GatewayError('body_invalid', 'the sign-in form is not valid JSON');
  if (status === 404) return new GatewayError('not_found', `no such page resource: ${req.method} ${req.originalUrl.split('?')[0] ?? ''}`);
  return err;
}
