import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApplicationCredentialExchange } from '../auth/application-credentials.js';
import type { Authenticator } from '../auth/authenticator.js';
import { extractCredential } from '../auth/credentials.js';
import { AuthError } from '../auth/errors.js';
import type { Identity } from '../auth/identity.js';
import type { DockerConfig } from '../config/schema.js';
import {
  checkContainerCreate,
  checkContainerUpdate,
  checkExecCreate,
  checkNetworkCreate,
  checkVolumeCreate,
  moveOffSharedBridge,
  type References,
} from '../docker/body-check.js';
import { engineJson } from '../docker/engine.js';
import { BodyError, field, isObject, parseBody, setField, type JsonObject } from '../docker/json-body.js';
import {
  NotFoundError,
  OWNER_LABEL,
  applyLimits,
  checkContainerName,
  claimVolume,
  createOwnedVolume,
  ownerFilters,
  projectNetwork,
  resolveOwned,
  stampOwner,
} from '../docker/ownership.js';
import { PerKeySerial } from '../docker/per-key-serial.js';
import {
  MIN_API_VERSION_TEXT,
  PolicyError,
  checkApiVersion,
  isLongLived,
  matchEndpoint,
  namedObject,
  olderThanServed,
  responseWaitMs,
  writes,
  type BodyCheck,
  type Matched,
} from '../docker/policy.js';
import { checkPullSource } from '../docker/registries.js';
import type { AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { exchangeRecorder } from './exchange.js';
import { isCertificateRefusal } from '../proxy/errors.js';
import { forwardRequest, hasBody } from '../proxy/forward.js';
import type { ProjectRateLimiter } from './rate-limit.js';
import { outgoingHeaders } from '../proxy/outgoing-headers.js';
import { readBody } from '../proxy/read-body.js';
import { forwardUpgrade } from '../proxy/upgrade.js';
import type { Upstream } from '../proxy/upstream.js';
import type { CoeMount, Readiness } from './mount.js';
import type { RequestTarget } from './path.js';
import { sendError, sendErrorOnSocket, toErrorReply, type Dialect, type ErrorReply } from './respond.js';

export interface DockerMountOptions {
  readonly authenticator: Authenticator;
  readonly applicationCredentials: ApplicationCredentialExchange;
  readonly engine: Upstream;
  readonly config: DockerConfig;
  readonly authUrl: string;
  readonly logger: Logger;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  /** Set when docker.rateLimit is configured: every authenticated request takes one from its project's bucket. */
  readonly rateLimiter?: ProjectRateLimiter;
}

/** Headers the engine must never see from a tenant: credentials and forwarding claims. */
const DROPPED = new Set(['authorization', 'x-auth-token', 'x-subject-token', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip']);
const drop = (lower: string): boolean => DROPPED.has(lower) || lower.startsWith('impersonate-');

/** Fields of `docker info` a tenant may know; the rest describes the host and other tenants. */
const INFO_FIELDS = ['ServerVersion', 'OSType', 'OperatingSystem', 'Architecture', 'NCPU', 'MemTotal', 'KernelVersion', 'OSVersion', 'CgroupVersion', 'Experimental'];

interface DockerRoute {
  /** `v1.47` or undefined for unversioned paths. */
  readonly version: string | undefined;
  /** Decoded segments after the version. */
  readonly route: string[];
  readonly query: URLSearchParams;
}

function dockerRoute(target: RequestTarget): DockerRoute {
  const segments = target.segments.slice(1).filter((s, i, all) => !(s === '' && i === all.length - 1));
  const version = segments[0] !== undefined && /^v\d+\.\d+$/.test(segments[0]) ? segments[0] : undefined;
  const q = target.rest.indexOf('?');
  return { version, route: version !== undefined ? segments.slice(1) : segments, query: new URLSearchParams(q === -1 ? '' : target.rest.slice(q + 1)) };
}

/** The engine path: normalized segments, the object reference replaced by its resolved id, the query re-encoded. */
function enginePath(r: DockerRoute, route: readonly string[], query: URLSearchParams): string {
  const path = `/${[...(r.version !== undefined ? [r.version] : []), ...route].map(encodeURIComponent).join('/')}`;
  const q = query.toString();
  return q === '' ? path : `${path}?${q}`;
}

/** The body of a hijacked request: exec start's small JSON object (checked and re-serialized), nothing for attach. */
function upgradeBody(matched: Matched, r: DockerRoute, raw: Buffer): Buffer | undefined {
  if (raw.length === 0) return undefined;
  if (matched.endpoint.body === 'exec-start') return Buffer.from(JSON.stringify(parseBody(raw)));
  throw new BodyError(`POST /${r.route.join('/')} takes no body`);
}

/** `/docker/*`: the Docker Engine API for tenants sharing one engine. */
export function dockerMount(options: DockerMountOptions): CoeMount {
  const { authenticator, engine, config, logger } = options;
  const wwwAuthenticate = `Keystone uri="${options.authUrl}"`;
  const dialect: Dialect = (reply) => ({ contentType: 'application/json', body: JSON.stringify({ message: reply.message }) });
  const reply = (err: unknown): ErrorReply => {
    const r = toErrorReply(err, logger);
    return r.status === 401 ? { ...r, headers: { 'WWW-Authenticate': wwwAuthenticate } } : r;
  };

  /** A request the caller's roles allow: reading with a read role, anything else with a write role. */
  const authorize = (matched: Matched, method: string, identity: Identity): void => {
    const has = (roles: readonly string[]): boolean => roles.some((r) => identity.roles.includes(r));
    if (has(config.roles.write)) return;
    const roles = identity.roles.length > 0 ? identity.roles.join(', ') : 'none';
    if (!has(config.roles.read)) {
      throw new PolicyError(`your roles in project ${identity.project.name} (${roles}) do not allow the Docker API: it needs one of ${[...config.roles.write, ...config.roles.read].join(', ')}`);
    }
    if (writes(matched, method)) {
      throw new PolicyError(`your roles in project ${identity.project.name} (${roles}) allow listing, inspecting and reading logs only: this needs one of ${config.roles.write.join(', ')}`);
    }
  };

  const identify = async (req: IncomingMessage, upgrade: boolean, target: RequestTarget): Promise<Identity> => {
    const credential = extractCredential(req.rawHeaders, { upgrade });
    // For credentials with access rules (zun-gateway docker-config makes them for /docker/**): the decoded path.
    const request = { method: req.method ?? 'GET', path: `/${target.segments.join('/')}` };
    let identity: Identity;
    if (credential.kind === 'token') identity = await authenticator.authenticate(credential.token, request);
    else {
      const { id, secret } = credential;
      const exchanged = await options.applicationCredentials.token(id, secret);
      try {
        identity = await authenticator.authenticate(exchanged, request);
      } catch (err) {
        // The token got for this credential was revoked before its expiry (the user's password changed, a role
        // assignment or group membership changed): Keystone revokes the user's tokens, not their application
        // credentials. Get a new token for the credential once rather than refusing it until the old token expires.
        if (!(err instanceof AuthError) || err.reason !== 'Unauthorized') throw err;
        options.applicationCredentials.forget(id, secret, exchanged);
        const renewed = await options.applicationCredentials.token(id, secret);
        try {
          identity = await authenticator.authenticate(renewed, request);
        } catch (again) {
          // A fresh token refused too: not a revocation; do not exchange the credential again on every request.
          if (again instanceof AuthError && again.reason === 'Unauthorized') {
            options.applicationCredentials.forget(id, secret, renewed);
            options.applicationCredentials.refuse(id, secret, again);
          }
          throw again;
        }
      }
    }
    options.rateLimiter?.take(identity);
    return identity;
  };

  /** Checks ownership of the path's object and rewrites the route with its engine id. */
  const ownedRoute = async (matched: Matched, r: DockerRoute, identity: Identity): Promise<string[]> => {
    const route = [...r.route];
    const { object } = matched.endpoint;
    if (object !== undefined && matched.id !== undefined) {
      const index = matched.endpoint.pattern.indexOf(':id');
      route[index] = await resolveOwned(engine, object, matched.id, identity.project.id);
    }
    return route;
  };

  /** Every container and network a create names is the project's; every named volume is, or becomes, the project's. */
  const verifyReferences = async (refs: References, project: string): Promise<void> => {
    const owned = async (kind: 'container' | 'network', ref: References['containers'][number], hint: string): Promise<void> => {
      await resolveOwned(engine, kind, ref.name, project).catch((err: unknown) => {
        throw err instanceof NotFoundError ? new BodyError(`${ref.field} (${ref.option}) names a ${kind} that is not yours${hint}`) : err;
      });
    };
    for (const ref of refs.containers) await owned('container', ref, '');
    for (const ref of refs.networks) await owned('network', ref, ': make your own with docker network create');
    for (const ref of refs.volumes) await claimVolume(engine, ref.name, project, ref.labels);
  };

  const readRequestBody = (req: IncomingMessage): Promise<Buffer> =>
    readBody(req, config.maxBodyBytes, req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined);

  /**
   * An endpoint that takes no body gets none. Below API 1.24 the engine applied a HostConfig sent to `start`: whatever
   * the client sends is read (bounded), must be empty (`{}` and `null` count as empty), and is not forwarded.
   */
  const noBody = async (req: IncomingMessage, r: DockerRoute): Promise<Buffer | undefined> => {
    if (!hasBody(req)) return undefined;
    const text = (await readRequestBody(req)).toString('utf8').trim();
    if (text === '' || text === '{}' || text === 'null') return Buffer.alloc(0);
    throw new BodyError(`${req.method} /${r.route.join('/')} takes no body through the gateway: container settings are given when it is created (docker create, docker run)`);
  };

  /** A body the adapter reads and checks (`kind`), as it will go to the engine. */
  const checkedJson = async (req: IncomingMessage, kind: BodyCheck, identity: Identity): Promise<JsonObject> => {
    const body = parseBody(await readRequestBody(req));
    const project = identity.project.id;
    switch (kind) {
      case 'exec-start':
        // Attached sessions are hijacked connections (handleUpgrade); only a detached start comes as a plain request.
        if (field(body, 'Detach') !== true) throw new PolicyError('exec start must use a hijacked connection (Upgrade: tcp) unless it is detached (docker exec -d)');
        break;
      case 'container-create': {
        const refs = checkContainerCreate(body);
        stampOwner(body, project);
        await verifyReferences(refs, project);
        if (config.projectNetworks) await moveOffSharedBridge(body, () => projectNetwork(engine, project));
        let hostConfig = field(body, 'HostConfig');
        if (!isObject(hostConfig ?? null)) {
          hostConfig = {};
          setField(body, 'HostConfig', hostConfig);
        }
        applyLimits(hostConfig as JsonObject, config.limits, true);
        break;
      }
      case 'container-update':
        checkContainerUpdate(body);
        applyLimits(body, config.limits, false);
        break;
      case 'exec-create':
        checkExecCreate(body);
        break;
      case 'volume-create':
        checkVolumeCreate(body);
        stampOwner(body, project);
        break;
      case 'network-create':
        checkNetworkCreate(body);
        stampOwner(body, project);
        break;
      case 'network-connect': {
        const container = field(body, 'Container');
        if (typeof container !== 'string') throw new BodyError('Container must name a container');
        setField(body, 'Container', await resolveOwned(engine, 'container', container, project));
        break;
      }
    }
    return body;
  };

  /** What goes to the engine as the body: the checked one, none, or (undefined) the client's own stream. */
  const checkedBody = async (req: IncomingMessage, matched: Matched, r: DockerRoute, identity: Identity): Promise<Buffer | undefined> => {
    const kind = matched.endpoint.body;
    if (kind === undefined) return matched.endpoint.rawBody === true ? undefined : noBody(req, r);
    return Buffer.from(JSON.stringify(await checkedJson(req, kind, identity)));
  };

  const quotaSerial = new PerKeySerial();
  /**
   * A create under `maxContainersPerProject`: the project's containers are counted and the create is made as one
   * step per project (held until this response closes), so parallel creates cannot all count the same containers.
   * Refuses at the limit; false when the client left while it waited its turn (there is nobody to create for).
   */
  const admitContainerCreate = async (identity: Identity, res: ServerResponse): Promise<boolean> => {
    const max = config.limits.maxContainersPerProject;
    if (max === undefined) return true;
    const held = quotaSerial.acquire(identity.project.id);
    let release: (() => void) | undefined;
    let closed = false;
    res.once('close', () => {
      closed = true;
      release?.();
    });
    release = await held;
    // Its 'close' has come already: the turn is given back here.
    if (closed) {
      release();
      return false;
    }
    try {
      const filters = encodeURIComponent(JSON.stringify({ label: [`${OWNER_LABEL}=${identity.project.id}`] }));
      const answer = await engineJson(engine, 'GET', `/containers/json?all=1&filters=${filters}`);
      if (Array.isArray(answer.body) && answer.body.length >= max) {
        throw new PolicyError(`project ${identity.project.name} already has ${answer.body.length} containers, the most allowed is ${max}; remove some first`);
      }
      return true;
    } catch (err) {
      release();
      throw err;
    }
  };

  const prepareQuery = (matched: Matched, r: DockerRoute, identity: Identity): URLSearchParams => {
    const query = new URLSearchParams(r.query);
    if (matched.endpoint.list) query.set('filters', ownerFilters(r.query.get('filters'), identity.project.id));
    if (matched.endpoint.special === 'image-pull') {
      const image = query.get('fromImage');
      if (image === null || query.has('fromSrc') || query.has('repo')) {
        throw new PolicyError('POST /images/create is served for pulls only (?fromImage=); importing images is engine-wide');
      }
      checkPullSource(image, config.allowedRegistries);
    }
    return query;
  };

  const headersFor = (req: IncomingMessage, upgrade: boolean, body: Buffer | undefined): string[] =>
    outgoingHeaders(req.rawHeaders, {
      hostHeader: engine.hostHeader,
      drop,
      upgrade,
      ...(body !== undefined ? { bodyLength: body.length } : {}),
      append: [],
    });

  const startExchange = exchangeRecorder({ coe: 'docker', logger, audit: options.audit, metrics: options.metrics });

  /** An answer the adapter composed or checked itself, relayed as JSON. */
  const relayJson = (res: ServerResponse, status: number, body: unknown): void => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const serveInfo = async (res: ServerResponse, identity: Identity): Promise<void> => {
    const answer = await engineJson(engine, 'GET', '/info');
    const info = answer.body as JsonObject;
    const redacted: JsonObject = { Name: 'zun-gateway', Containers: 0, Images: 0, Driver: '', SecurityOptions: [] };
    for (const k of INFO_FIELDS) if (info[k] !== undefined) redacted[k] = info[k] as JsonObject[string];
    const filters = encodeURIComponent(JSON.stringify({ label: [`${OWNER_LABEL}=${identity.project.id}`] }));
    const [own, images] = await Promise.all([engineJson(engine, 'GET', `/containers/json?all=1&filters=${filters}`), engineJson(engine, 'GET', '/images/json')]);
    if (Array.isArray(own.body)) {
      // The counts `docker info` shows, from the project's own containers (the engine's describe every tenant's).
      const states = own.body.map((c) => String(field(c as JsonObject, 'State') ?? ''));
      redacted.Containers = states.length;
      redacted.ContainersRunning = states.filter((s) => s === 'running').length;
      redacted.ContainersPaused = states.filter((s) => s === 'paused').length;
      redacted.ContainersStopped = states.length - redacted.ContainersRunning - redacted.ContainersPaused;
    }
    // Images are shared by every tenant, and `docker images` lists them all.
    if (Array.isArray(images.body)) redacted.Images = images.body.length;
    relayJson(res, answer.status, redacted);
  };

  /**
   * `docker version` shows the engine's oldest API version (1.12 on Docker 20.10); the gateway serves none older than
   * MIN_API_VERSION, so that is what it says, at the top and in the Engine component.
   */
  const serveVersion = async (res: ServerResponse): Promise<void> => {
    const answer = await engineJson(engine, 'GET', '/version');
    const version = answer.body as JsonObject;
    if (olderThanServed(version.MinAPIVersion)) version.MinAPIVersion = MIN_API_VERSION_TEXT;
    if (Array.isArray(version.Components)) {
      for (const c of version.Components) {
        const details = field(c, 'Details');
        if (isObject(details) && olderThanServed(details.MinAPIVersion)) details.MinAPIVersion = MIN_API_VERSION_TEXT;
      }
    }
    relayJson(res, answer.status, version);
  };

  return {
    name: 'docker',
    dialect,

    handleRequest(req: IncomingMessage, res: ServerResponse, target: RequestTarget): void {
      const exchange = startExchange(req);
      exchange.observe(res);
      const run = async (): Promise<void> => {
        const r = dockerRoute(target);
        const method = req.method ?? 'GET';
        let matched: Matched;
        try {
          matched = matchEndpoint(method, r.route);
        } catch (err) {
          // Unknown endpoints still need a valid caller: strangers learn nothing about the policy.
          exchange.identity = await identify(req, false, target);
          throw err;
        }
        exchange.object = namedObject(matched, r.query);
        exchange.longLived = isLongLived(matched, r.query);
        const identity = matched.endpoint.anonymous ? undefined : await identify(req, false, target);
        exchange.identity = identity;
        if (identity !== undefined) {
          checkApiVersion(r.version);
          authorize(matched, method, identity);
        }
        const route = identity !== undefined ? await ownedRoute(matched, r, identity) : r.route;
        if (identity !== undefined && matched.endpoint.special === 'info') return serveInfo(res, identity);
        if (matched.endpoint.special === 'version') return serveVersion(res);
        const query = identity !== undefined ? prepareQuery(matched, r, identity) : r.query;
        const newName = query.get('name');
        if (identity !== undefined && newName !== null && newName !== '' && (matched.endpoint.special === 'container-create' || matched.endpoint.pattern[2] === 'rename')) {
          await checkContainerName(engine, newName, identity.project.id);
        }
        if (identity !== undefined && matched.endpoint.special === 'volume-create') {
          const created = await createOwnedVolume(engine, await checkedJson(req, 'volume-create', identity), identity.project.id);
          return relayJson(res, created.status, created.body);
        }
        const body = identity !== undefined ? await checkedBody(req, matched, r, identity) : await noBody(req, r);
        if (identity !== undefined && matched.endpoint.special === 'container-create' && !(await admitContainerCreate(identity, res))) return;
        forwardRequest(req, res, {
          upstream: engine,
          path: enginePath(r, route, query),
          headers: headersFor(req, false, body),
          ...(body !== undefined ? { body } : {}),
          bytes: exchange.bytes,
          longLived: exchange.longLived,
          responseHeaderTimeoutMs: responseWaitMs(matched, r.query, engine.responseHeaderTimeoutMs),
          onResponse: exchange.answered,
          onError: (err) => {
            exchange.upstreamFailed(err, sendError(res, dialect, reply(err)));
          },
        });
        exchange.sentUpstream();
      };
      run().catch((err: unknown) => {
        req.resume();
        exchange.refuseWith(reply(err), (r) => sendError(res, dialect, r), err);
      });
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget): void {
      const exchange = startExchange(req);
      const hooks = exchange.observeUpgrade(socket);
      const run = async (): Promise<void> => {
        const r = dockerRoute(target);
        const identity = await identify(req, true, target);
        exchange.identity = identity;
        const matched = matchEndpoint(req.method ?? 'GET', r.route);
        exchange.object = namedObject(matched, r.query);
        checkApiVersion(r.version);
        authorize(matched, req.method ?? 'GET', identity);
        if (!matched.endpoint.upgrade) throw new PolicyError(`${req.method} /${r.route.join('/')} cannot be upgraded`);
        const route = await ownedRoute(matched, r, identity);
        // exec start carries a small JSON body ({"Detach":false,"Tty":false}) before the stream begins.
        const length = Number(req.headers['content-length'] ?? 0);
        if (!Number.isFinite(length) || length < 0 || length > config.maxBodyBytes) throw new BodyError('invalid Content-Length on an upgrade');
        let buffered = head;
        while (buffered.length < length) {
          const more = await new Promise<Buffer>((resolve, reject) => {
            socket.once('data', resolve);
            socket.once('error', reject);
          });
          buffered = Buffer.concat([buffered, more]);
        }
        const body = upgradeBody(matched, r, buffered.subarray(0, length));
        const rest = buffered.subarray(length);
        forwardUpgrade(req, socket, rest, {
          upstream: engine,
          path: enginePath(r, route, r.query),
          headers: headersFor(req, true, body),
          ...(body !== undefined ? { body } : {}),
          onError: (err) => {
            exchange.upstreamFailed(err, sendErrorOnSocket(socket, dialect, reply(err)));
          },
          ...hooks,
        });
        exchange.sentUpstream();
      };
      run().catch((err: unknown) => exchange.refuseWith(reply(err), (r) => sendErrorOnSocket(socket, dialect, r), err));
    },

    async ready(): Promise<Readiness> {
      try {
        const answer = await engineJson(engine, 'GET', '/_ping');
        return { ok: answer.status === 200, detail: answer.status === 200 ? 'engine answers' : `engine answered HTTP ${answer.status}` };
      } catch (err) {
        return { ok: false, detail: `engine unreachable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, ...(isCertificateRefusal(err) ? { blocking: true } : {}) };
      }
    },

    async describe(identity): Promise<Record<string, unknown>> {
      return 'project' in identity ? { ownerLabel: `${OWNER_LABEL}=${identity.project.id}` } : {};
    },

    close(): void {
      engine.close();
    },
  };
}
