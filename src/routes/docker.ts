import type { Identity } from '../auth/identity.js';
import type { DockerConfig } from '../config/schema.js';
import { BodyAdmission, upgradeBody } from '../docker/admission.js';
import { engineHealth } from '../docker/health.js';
import { ImageAccess, parseSharedImages } from '../docker/images.js';
import { assertEngineRequest, droppedForEngine } from '../docker/outgoing-check.js';
import { OWNER_LABEL, checkContainerName, createOwnedVolume, resolveOwned } from '../docker/ownership.js';
import { checkApiVersion, isLongLived, refused, responseWaitMs, type Matched } from '../docker/policy.js';
import { pullObserver } from '../docker/pull-observer.js';
import { engineQuery } from '../docker/query.js';
import { ProjectQuota } from '../docker/quota.js';
import { authorize } from '../docker/roles.js';
import { DOCKER_CREDENTIAL_HELP, DOCKER_PREFIX_HINT, dockerRoute, enginePath, isDockerApiRoot, routeFacts, type DockerRoute } from '../docker/route.js';
import { infoFor, versionFor } from '../docker/tenant-answers.js';
import { bodyError } from '../docker/json-body.js';
import { outgoingHeaders } from '../proxy/outgoing-headers.js';
import { hasBody } from '../proxy/forward.js';
import { readUpgradeBody } from '../proxy/upgrade-body.js';
import type { Upstream } from '../proxy/upstream.js';
import type { Signpost } from './mount.js';
import type { Call, CoeSteps, Forwarding, OwnAnswer } from './pipeline.js';
import type { ProjectRateLimiter } from './rate-limit.js';

export interface DockerMountOptions {
  readonly engine: Upstream;
  readonly config: DockerConfig;
  readonly authUrl: string;
  /** Set when docker.rateLimit is configured: every authenticated request takes one from its project's bucket. */
  readonly rateLimiter?: ProjectRateLimiter;
}

/** Docker's API roots, its error dialect (`{"message"}`, which the docker CLI prints) and the hint for a missed prefix. */
export const DOCKER_SIGNPOST: Signpost = {
  name: 'docker',
  dialect: (reply) => ({ contentType: 'application/json', body: JSON.stringify({ message: reply.message }) }),
  isApiRoot: isDockerApiRoot,
  prefixHint: DOCKER_PREFIX_HINT,
};

/** `/docker/*`: the Docker Engine API for tenants sharing one engine. */
export function dockerSteps(options: DockerMountOptions): CoeSteps<DockerRoute, Identity, Forwarding> {
  const { engine, config } = options;
  const bodies = new BodyAdmission(engine, config);
  const quota = new ProjectQuota(engine, {
    ...(config.limits.maxContainersPerProject !== undefined ? { containers: config.limits.maxContainersPerProject } : {}),
    networks: config.limits.maxNetworksPerProject,
  });
  const images = new ImageAccess(engine, parseSharedImages(config.sharedImages));
  const what = (route: DockerRoute): string => `/${route.segments.join('/')}`;

  /** The path's object checked to be the project's, and named by its engine id. */
  const ownedSegments = async (matched: Matched, route: DockerRoute, identity: Identity): Promise<string[]> => {
    const segments = [...route.segments];
    const { object } = matched.endpoint;
    if (object !== undefined && matched.id !== undefined) {
      segments[matched.endpoint.pattern.indexOf(':id')] = await resolveOwned(engine, object, matched.id, identity.project.id);
    }
    return segments;
  };

  const plan = (route: DockerRoute, matched: Matched, segments: readonly string[], query: URLSearchParams, body: Buffer | undefined): Forwarding => ({
    upstream: engine,
    path: enginePath(route, segments, query),
    ...(body !== undefined ? { body } : {}),
    longLived: isLongLived(matched, route.query),
    responseHeaderTimeoutMs: responseWaitMs(matched, route.query, engine.responseHeaderTimeoutMs),
  });

  const admitRequest = async ({ req, res, route, identity }: Call<DockerRoute, Identity>, matched: Matched): Promise<Forwarding | OwnAnswer> => {
    const segments = await ownedSegments(matched, route, identity);
    const { special } = matched.endpoint;
    if (special === 'info') return { answer: await infoFor(engine, identity.project.id, () => images.count(identity.project.id)) };
    if (special === 'version') return { answer: await versionFor(engine) };
    if (special === 'image-list' || special === 'image-inspect') {
      await bodies.none(req, what(route));
      const path = enginePath(route, segments, route.query);
      return { answer: special === 'image-list' ? await images.list(path, identity.project.id) : await images.inspect(path, matched.image ?? '', identity.project.id) };
    }
    const query = engineQuery(matched, route.query, identity, config);
    const name = query.get('name');
    if (name !== null && name !== '' && (special === 'container-create' || matched.endpoint.pattern[2] === 'rename')) await checkContainerName(engine, name, identity.project.id);
    if (special === 'volume-create') return { answer: await createOwnedVolume(engine, await bodies.checked(req, 'volume-create', identity), identity.project.id) };
    const object = matched.endpoint.object !== undefined ? segments[matched.endpoint.pattern.indexOf(':id')] : undefined;
    const body = await bodies.body(req, matched, what(route), identity, object);
    if (special === 'image-pull') return { ...plan(route, matched, segments, query, body), observer: pullObserver(images, identity, query) };
    if (special === 'network-create' && res !== undefined && !(await quota.admit(identity, res, 'networks'))) return { answer: { status: 499, body: undefined } };
    if (special !== 'container-create' || body === undefined) return plan(route, matched, segments, query, body);
    const image = await images.forCreate(body, identity.project.id);
    // A client that left while its create waited for the quota gets nothing created (499: nginx's "client closed").
    if (res !== undefined && !(await quota.admit(identity, res, 'containers'))) return { answer: { status: 499, body: undefined } };
    return { answer: await images.create(enginePath(route, segments, query), body, image, identity.project.id, engine.responseHeaderTimeoutMs) };
  };

  /** Attach and exec start, hijacked: exec start's small JSON body is read off the connection and checked first. */
  const admitUpgrade = async ({ req, socket, head, route, identity }: Call<DockerRoute, Identity>, matched: Matched): Promise<Forwarding> => {
    if (!matched.endpoint.upgrade) throw refused(`${route.method} ${what(route)} cannot be upgraded`);
    const segments = await ownedSegments(matched, route, identity);
    const length = Number(req.headers['content-length'] ?? 0);
    if (!Number.isFinite(length) || length < 0 || length > config.maxBodyBytes) throw bodyError('invalid Content-Length on an upgrade');
    const read = await readUpgradeBody(socket as NonNullable<typeof socket>, head ?? Buffer.alloc(0), length);
    return { ...plan(route, matched, segments, route.query, upgradeBody(matched, read.body, `POST ${what(route)}`)), longLived: false, head: read.rest };
  };

  return {
    ...DOCKER_SIGNPOST,
    verbatim: false,
    // `zun-gateway docker-config` makes application credentials whose access rules allow /docker/** on this gateway.
    credentials: { applicationCredentials: true, howTo: DOCKER_CREDENTIAL_HELP, scopes: 'project', accessRules: true },
    authUrl: options.authUrl,
    ...(options.rateLimiter !== undefined ? { rateLimiter: options.rateLimiter } : {}),

    route: (req, target) => dockerRoute(req, target),
    facts: routeFacts,

    /**
     * `_ping`: API version negotiation, before any credentials. No client sends it a body: one is refused unread (the
     * refusal bounds what still arrives), since reading it, without a token or a deadline, let anyone hold a connection.
     */
    anonymous({ req, route, socket }) {
      const { matched } = route;
      if (socket !== undefined || matched?.endpoint.anonymous !== true) return undefined;
      if (hasBody(req)) throw bodyError(`${route.method} ${what(route)} takes no body`);
      return plan(route, matched, route.segments, route.query, undefined);
    },

    admit(call) {
      const { route, identity } = call;
      if (route.matched === undefined) throw route.refusal;
      checkApiVersion(route.version);
      authorize(route.matched, route.method, identity, config.roles);
      return call.socket !== undefined ? admitUpgrade(call, route.matched) : admitRequest(call, route.matched);
    },

    headers: ({ req, socket }, forwarding) =>
      outgoingHeaders(req.rawHeaders, {
        hostHeader: engine.hostHeader,
        drop: droppedForEngine,
        upgrade: socket !== undefined,
        ...(forwarding.body !== undefined ? { bodyLength: forwarding.body.length } : {}),
        append: [],
      }),

    check: (headers) => assertEngineRequest(headers),

    ready: () => engineHealth(engine, config.isolationRulesApplied),

    async describe(identity) {
      return 'project' in identity ? { ownerLabel: `${OWNER_LABEL}=${identity.project.id}` } : {};
    },

    close: () => engine.close(),
  };
}
