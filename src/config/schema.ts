import { z } from 'zod';
import { isImageReferenceOrDigest } from './image-reference.js';

/**
 * The gateway's configuration, validated once at start-up. Every key has a precise error message
 * (see load.ts) and every default is visible here.
 */

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/**
 * `${NAME}` substitutes text, so a number or a boolean given from the environment (`port: ${PORT}`) arrives as the
 * text of one: read as the number or boolean it spells. Anything else is left for the schema to refuse.
 */
function fromEnvText<T extends z.ZodType>(schema: T) {
  return z.preprocess((value: unknown) => {
    if (typeof value !== 'string') return value;
    const text = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    if (text === 'true' || text === 'false') return text === 'true';
    return value;
  }, schema);
}
const port = fromEnvText(z.number().int().min(0).max(65535));
const seconds = fromEnvText(z.number().positive());
/** Prefixes keep Keystone-derived names out of the apiserver's reserved `system:` space (invariants.md 5). */
const identityPrefix = nonEmpty.refine((p) => !p.toLowerCase().startsWith('system:'), {
  message: "must not start with 'system:' (names derived from Keystone must never become system users or groups)",
});
/**
 * The groups of a domain- or system-scoped token: a list is given only to tokens with the `admin` role on that scope
 * (Keystone gives a domain- or system-scoped token to anyone with any role there, `reader` included); a map from role
 * name to groups gives each token the groups of the roles it has.
 */
const scopeGroupMapping = z.union([
  z.array(identityPrefix).min(1),
  z.record(nonEmpty, z.array(identityPrefix).min(1)).refine((m) => Object.keys(m).length > 0, { message: 'map at least one role to groups' }),
]);

const tlsFiles = z.strictObject({
  certFile: nonEmpty,
  keyFile: nonEmpty,
  /** Set: clients must present a certificate signed by this CA (mutual TLS), in addition to their Keystone token. */
  clientCaFile: nonEmpty.optional(),
  /** How often the files are checked for changes (certificates are reloaded without a restart). */
  reloadIntervalSeconds: seconds.default(10),
});

const passwordCredentials = z.strictObject({
  username: nonEmpty.optional(),
  userId: nonEmpty.optional(),
  password: nonEmpty,
  userDomainName: nonEmpty.optional(),
  userDomainId: nonEmpty.optional(),
  projectName: nonEmpty.optional(),
  projectId: nonEmpty.optional(),
  projectDomainName: nonEmpty.optional(),
  projectDomainId: nonEmpty.optional(),
})
  .refine((c) => c.username !== undefined || c.userId !== undefined, {
    message: 'needs username or userId',
  })
  .refine((c) => c.userId !== undefined || c.userDomainName !== undefined || c.userDomainId !== undefined, {
    message: 'username needs userDomainName or userDomainId',
  })
  .refine((c) => c.projectName !== undefined || c.projectId !== undefined, {
    message: 'needs projectName or projectId: the service token must be project-scoped',
  })
  .refine((c) => c.projectId !== undefined || c.projectDomainName !== undefined || c.projectDomainId !== undefined, {
    message: 'projectName needs projectDomainName or projectDomainId',
  });

const applicationCredentials = z.strictObject({
  applicationCredentialId: nonEmpty,
  applicationCredentialSecret: nonEmpty,
});

const quantities = z.record(nonEmpty, z.union([nonEmpty, z.number()]).transform(String));
const NAMESPACE_PLACEHOLDERS = /\{(project_id|project_name|domain_name)\}/g;

/** What a cluster may set for itself in `tenancy` (no defaults here: what it leaves out comes from k8s.tenancy). */
const tenancyFields = {
  /** Placeholders {project_id}, {project_name}, {domain_name}; the result is made DNS-1123 safe. */
  namespaceTemplate: nonEmpty.refine((t) => !/[{}]/.test(t.replace(NAMESPACE_PLACEHOLDERS, '')), {
    message: 'may only use the placeholders {project_id}, {project_name} and {domain_name}',
  }),
  /** Keystone role -> ClusterRole bound in every project namespace to the group keystone:project:<id>:role:<role>. */
  roleBindings: z.record(nonEmpty, nonEmpty),
  /** ResourceQuota spec.hard for every project namespace, e.g. {pods: 20, requests.cpu: "4"}. */
  resourceQuota: quantities,
  /** LimitRange item (type Container) for every project namespace. */
  limitRange: z.strictObject({ default: quantities, defaultRequest: quantities, max: quantities, min: quantities }).partial(),
  /** A provisioned project is re-checked after this long (mapping changes, deleted bindings, missing labels). */
  recheckSeconds: seconds,
};

const tenancy = z.strictObject({
  namespaceTemplate: tenancyFields.namespaceTemplate.default('os-{project_name}'),
  roleBindings: tenancyFields.roleBindings.default({ admin: 'admin', member: 'edit', reader: 'view' }),
  resourceQuota: tenancyFields.resourceQuota.optional(),
  limitRange: tenancyFields.limitRange.optional(),
  recheckSeconds: tenancyFields.recheckSeconds.default(600),
  /**
   * The Pod Security Standards level pods in project namespaces must meet: the gateway's admission webhook enforces
   * it, and namespaces are labelled for the apiserver's own PodSecurity admission (1.23+). privileged: no checks.
   * One level for every cluster: the webhook every cluster calls is the gateway's one endpoint.
   */
  podSecurity: z.strictObject({ level: z.enum(['privileged', 'baseline', 'restricted']).default('baseline') }).default({ level: 'baseline' }),
  /**
   * Pods in project namespaces pull every image (imagePullPolicy Always, set by the gateway's mutating webhook), so
   * no project runs another's private image from a node's cache. false: the pods' own policy (warned at start).
   */
  alwaysPullImages: fromEnvText(z.boolean()).default(true),
  /** Images preloaded on the nodes for everyone, which keep the pod's own policy: references (busybox = docker.io/library/busybox:latest) or digests. */
  sharedImages: z
    .array(nonEmpty.refine(isImageReferenceOrDigest, { message: 'must be an image reference (busybox, registry.example:5000/team/app:1.2, name@sha256:<hex>) or a digest (sha256:<hex>)' }))
    .default([]),
  /**
   * volumeMounts subPath/subPathExpr (CVE-2021-25741): auto refuses them while the apiserver's version is affected (or
   * unknown); refuse and allow decide regardless (allow: every node's kubelet is known to be fixed).
   */
  subPath: z.enum(['auto', 'refuse', 'allow']).default('auto'),
  /**
   * Subjects RoleBindings in project namespaces may name beyond the project's own groups and service accounts (the
   * webhook refuses system: users and groups, other namespaces' service accounts and other projects' groups).
   * A name ending in * allows every name starting with the rest.
   */
  bindingSubjects: z
    .array(
      z.discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('Group'), name: nonEmpty }),
        z.strictObject({ kind: z.literal('User'), name: nonEmpty }),
        z.strictObject({ kind: z.literal('ServiceAccount'), namespace: nonEmpty, name: nonEmpty }),
      ]),
    )
    .default([]),
});

/** A cluster's own tenancy keys, each replacing the one of k8s.tenancy. */
const tenancyOverride = z.strictObject({
  namespaceTemplate: tenancyFields.namespaceTemplate.optional(),
  roleBindings: tenancyFields.roleBindings.optional(),
  resourceQuota: tenancyFields.resourceQuota.optional(),
  limitRange: tenancyFields.limitRange.optional(),
  recheckSeconds: tenancyFields.recheckSeconds.optional(),
  podSecurity: z.unknown().optional(),
});

/** Bytes, as a number or with a unit: 512m, 2g, 1.5G, 1048576. */
const byteSize = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?\s*([kmgt]i?b?)?$/i, 'must be a size such as 512m or 2g')
    .transform((v) => {
      const m = /^(\d+(?:\.\d+)?)\s*([kmgt])?/i.exec(v) as RegExpExecArray;
      const unit = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
      return Math.round(Number(m[1]) * unit);
    }),
]);

/** What Docker gave containers for years (its service unit's LimitNOFILE), and room for io_uring and databases. */
const DEFAULT_MAX_NOFILE = 1_048_576;
const DEFAULT_MAX_MEMLOCK = 64 * 2 ** 20;

/** Per project and COE: a token bucket of `burst` requests refilled at `requestsPerSecond` (routes/rate-limit.ts). */
const rateLimit = z
  .strictObject({ requestsPerSecond: fromEnvText(z.number().positive()), burst: fromEnvText(z.number().int().positive()).optional() })
  .transform((r) => ({ requestsPerSecond: r.requestsPerSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.requestsPerSecond)) }));

const docker = z.strictObject({
  /** unix:///var/run/docker.sock, or tcp://host:2376 (with tls files for a TLS engine). */
  host: z
    .string()
    .regex(/^(unix:\/\/\/.+|tcp:\/\/[^/]+)$/, 'must be unix:///path/to/docker.sock or tcp://host:port')
    .default('unix:///var/run/docker.sock'),
  tls: z.strictObject({ caFile: nonEmpty.optional(), certFile: nonEmpty.optional(), keyFile: nonEmpty.optional() }).optional(),
  /**
   * An ordinary request the engine has not started answering after this long gets 504 (0: no limit). Never applied
   * to long-lived requests (events, logs --follow, stats, wait), hijacked streams, or uploads still under way.
   */
  responseHeaderTimeoutSeconds: fromEnvText(z.number().nonnegative()).default(300),
  /** Optional: requests per project and second (429 with Retry-After beyond it). */
  rateLimit: rateLimit.optional(),
  /** Request bodies the adapter reads to check (create, update, exec) are refused above this size. */
  maxBodyBytes: fromEnvText(z.number().int().positive()).default(1024 * 1024),
  limits: z
    .strictObject({
      maxContainersPerProject: fromEnvText(z.number().int().positive()).optional(),
      /**
       * Networks a project may make (its default network counts). Each takes an address range from the engine's
       * `default-address-pools`, about 30 in all by default, shared by every project: without a bound one tenant could
       * use them all up and no new project could run a container.
       */
      maxNetworksPerProject: fromEnvText(z.number().int().positive()).default(5),
      defaultMemory: byteSize.optional(),
      maxMemory: byteSize.optional(),
      defaultCpus: fromEnvText(z.number().positive()).optional(),
      maxCpus: fromEnvText(z.number().positive()).optional(),
      /** Processes per container (HostConfig.PidsLimit): one tenant's fork bomb must not use up the host's PIDs. */
      defaultPids: fromEnvText(z.number().int().positive()).optional(),
      maxPids: fromEnvText(z.number().int().positive()).default(4096),
      /** Memory plus swap per container (HostConfig.MemorySwap); unset: twice maxMemory, the engine's own default. */
      maxMemorySwap: byteSize.optional(),
      /**
       * Open files (`--ulimit nofile`) and locked memory (`--ulimit memlock`, bytes) per process: refused above (a
       * container that names none gets the engine's --default-ulimit, which the operator keeps within these).
       */
      maxNofile: fromEnvText(z.number().int().positive()).default(DEFAULT_MAX_NOFILE),
      maxMemlock: byteSize.default(DEFAULT_MAX_MEMLOCK),
    })
    .refine((l) => l.maxMemorySwap === undefined || l.maxMemory === undefined || l.maxMemorySwap >= l.maxMemory, {
      message: 'maxMemorySwap counts memory and swap together: it must be at least maxMemory',
      path: ['maxMemorySwap'],
    })
    .default({ maxNetworksPerProject: 5, maxPids: 4096, maxNofile: DEFAULT_MAX_NOFILE, maxMemlock: DEFAULT_MAX_MEMLOCK }),
  /**
   * Keystone roles on the Docker API: `write` may create, change, exec into and copy from the project's containers;
   * `read` may only list, inspect and read logs, stats and events. A caller with neither is refused.
   */
  roles: z
    .strictObject({ write: z.array(nonEmpty).default(['admin', 'member']), read: z.array(nonEmpty).default(['reader']) })
    .default({ write: ['admin', 'member'], read: ['reader'] }),
  /**
   * Registries tenants may pull from (host[:port], `docker.io` for Docker Hub). Unset: any registry whose host is not
   * loopback, link-local, private or unspecified (by name: `localhost`); the engine fetches what a tenant names.
   */
  allowedRegistries: z.array(nonEmpty).optional(),
  /**
   * Images every project may use without pulling them (an operator's preloaded base images): references (`name:tag`,
   * `name@sha256:...`) or image ids (`sha256:...`). Any other image is usable only by the projects that pulled it.
   */
  sharedImages: z.array(nonEmpty).default([]),
  /**
   * Containers that name no network join their project's own network (made on first use) instead of the engine's
   * default bridge, where every tenant's containers could reach each other. false: the engine's default.
   */
  projectNetworks: fromEnvText(z.boolean()).default(true),
  /**
   * The operator states that the engine's host drops traffic from the engine's bridges to the host and that Docker
   * isolates networks from each other (docs/operations.md, "Keeping tenant containers away from the host and each
   * other"). The gateway cannot see a host's firewall: until this is set it warns, at start and in /readyz.
   */
  isolationRulesApplied: fromEnvText(z.boolean()).default(false),
});

/** A cluster's name: a DNS-1123 label, the last segment of /k8s/clusters/<name> and of kubeconfig context names. */
const clusterName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label: lower-case letters, digits and dashes, starting and ending with a letter or digit')
  .max(63, 'must be at most 63 characters (a DNS-1123 label)');

/**
 * An ordinary request the apiserver has not started answering after this long gets 504 (0: no limit); above the
 * apiserver's own --request-timeout (60 s) so its answer comes first. Never applied to watches, follows,
 * exec/attach/port-forward or uploads still under way.
 */
const responseHeaderTimeoutSeconds = fromEnvText(z.number().nonnegative());
/** Watches and `logs -f` as streams on shared HTTP/2 connections to the apiserver (false: a connection each). */
const http2Watches = fromEnvText(z.boolean());
/**
 * Ordinary requests as streams on the same shared HTTP/2 connections (false: an HTTP/1.1 keep-alive pool). Off by
 * default: Node's HTTP/2 client costs the gateway more CPU per request than the pool (docs/performance.md, step 13).
 */
const http2Requests = fromEnvText(z.boolean());

/** One cluster of k8s.clusters: served at /k8s/clusters/<name>, the first also at /k8s. */
const k8sCluster = z.strictObject({
  name: clusterName,
  /** Omitted: the in-cluster service account (the cluster the gateway runs in). */
  kubeconfig: nonEmpty.optional(),
  context: nonEmpty.optional(),
  /** Only Keystone projects carrying one of these tags may use the cluster; omitted: every project. */
  projectTags: z.array(nonEmpty).min(1, 'list at least one tag, or leave projectTags out to open the cluster to every project').optional(),
  /** Omitted: k8s.responseHeaderTimeoutSeconds. */
  responseHeaderTimeoutSeconds: responseHeaderTimeoutSeconds.optional(),
  /** Omitted: k8s.http2Watches. */
  http2Watches: http2Watches.optional(),
  /** Omitted: k8s.http2Requests. */
  http2Requests: http2Requests.optional(),
  /** Keys that replace k8s.tenancy's on this cluster (podSecurity is shared). */
  tenancy: tenancyOverride.optional(),
});

const impersonation = z
  .strictObject({
    userPrefix: identityPrefix.default('keystone:'),
    groupPrefix: identityPrefix.default('keystone:'),
    extras: fromEnvText(z.boolean()).default(true),
    /**
     * Domain-scoped tokens (by domain id or name) act with exactly these groups (a list: admin role only; a map:
     * by role); unmapped domains and roles get 403.
     */
    domainScopeGroups: z.record(nonEmpty, scopeGroupMapping).optional(),
    /** System-scoped tokens act with exactly these groups (a list: admin role only; a map: by role); unset: 403. */
    systemScopeGroups: scopeGroupMapping.optional(),
    /**
     * One group every project-scoped caller also gets, whatever its project: what the apiserver's API Priority and
     * Fairness matches tenants' requests by (the chart's FlowSchema), so that limits hold across replicas.
     */
    tenantGroup: identityPrefix.optional(),
  })
  .default({ userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true });

/** The name of the one cluster the single-cluster keys (k8s.kubeconfig, k8s.context) describe. */
export const DEFAULT_CLUSTER = 'default';

/**
 * /k8s: one cluster (k8s.kubeconfig and k8s.context, or neither: the in-cluster service account), or several
 * (k8s.clusters). Either way the result lists the clusters in `clusters`, each with every setting resolved.
 */
const k8s = z
  .strictObject({
    kubeconfig: nonEmpty.optional(),
    context: nonEmpty.optional(),
    /** Several clusters behind one gateway: /k8s/clusters/<name>, the first also at /k8s. */
    clusters: z.array(k8sCluster).min(1, 'list at least one cluster, or leave k8s.clusters out for one cluster (k8s.kubeconfig)').optional(),
    /** Every cluster's, unless the cluster sets its own. */
    responseHeaderTimeoutSeconds: responseHeaderTimeoutSeconds.default(90),
    /** Optional: requests per project and second, over all clusters (429 with Retry-After beyond it; watches and exec count once). */
    rateLimit: rateLimit.optional(),
    /** Every cluster's, unless the cluster sets its own. */
    http2Watches: http2Watches.default(true),
    /** Every cluster's, unless the cluster sets its own. */
    http2Requests: http2Requests.default(false),
    impersonation,
    /** Present: every project gets its own namespace and role bindings on each cluster, on its first request there. */
    tenancy: tenancy.optional(),
  })
  .superRefine((k, ctx) => {
    if (k.clusters === undefined) return;
    for (const key of ['kubeconfig', 'context'] as const) {
      if (k[key] === undefined) continue;
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `given together with k8s.clusters: keep k8s.clusters and move the ${key} into the cluster it belongs to (clusters: [{name: ..., ${key}: ...}]), or remove k8s.clusters to serve this one cluster`,
      });
    }
    const seen = new Set<string>();
    k.clusters.forEach((c, i) => {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `another cluster is already named ${c.name}: names must be unique` });
      seen.add(c.name);
      if (c.tenancy === undefined) return;
      if (c.tenancy.podSecurity !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'tenancy', 'podSecurity'],
          message: 'is one level for every cluster (each calls the same admission webhook of the gateway): set it in k8s.tenancy',
        });
      }
      if (k.tenancy === undefined) {
        ctx.addIssue({ code: 'custom', path: ['clusters', i, 'tenancy'], message: 'changes k8s.tenancy for this cluster, but k8s.tenancy is not set: set it (it applies to every cluster)' });
      }
    });
  })
  .transform(({ kubeconfig, context, clusters, ...shared }) => {
    const given = clusters ?? [{ name: DEFAULT_CLUSTER, ...(kubeconfig !== undefined ? { kubeconfig } : {}), ...(context !== undefined ? { context } : {}) }];
    return {
      ...shared,
      clusters: given.map((c, i) => {
        const { tenancy: own, ...rest } = 'tenancy' in c ? c : { ...c, tenancy: undefined };
        const { podSecurity: _shared, ...overrides } = own ?? {};
        const merged = shared.tenancy === undefined ? undefined : { ...shared.tenancy, ...definedOnly(overrides) };
        return {
          ...rest,
          /** Where the cluster's settings are in the configuration, for messages: `k8s` or `k8s.clusters[1]`. */
          configKey: clusters === undefined ? 'k8s' : `k8s.clusters[${i}]`,
          responseHeaderTimeoutSeconds: c.responseHeaderTimeoutSeconds ?? shared.responseHeaderTimeoutSeconds,
          http2Watches: c.http2Watches ?? shared.http2Watches,
          http2Requests: c.http2Requests ?? shared.http2Requests,
          ...(merged !== undefined ? { tenancy: merged } : {}),
        };
      }),
    };
  });

/** The keys of an object whose values are not undefined (an optional key left out must not replace a shared one). */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
/** Failed sign-ins on the page, per source address and per user name, in a sliding window (auth/login-throttle.ts). */
const failedSignInDefaults = { perAddress: 20, perUser: 5, windowSeconds: 900, maxTracked: 10_000 };

/** The tenants' page at the gateway's root (src/ui), and the sign-in relay it uses. */
const ui = z.strictObject({
  enabled: fromEnvText(z.boolean()).default(true),
  /**
   * The URL tenants reach the gateway at, written into the kubeconfig the page hands out; unset: https://<the Host
   * the browser asked for> when the gateway serves TLS itself. Needed behind a load balancer that ends TLS.
   */
  publicUrl: z.url({ protocol: /^https$/, error: 'must be an https URL such as https://gateway.example:8443 (kubectl sends credentials only over TLS)' }).optional(),
  /** The Keystone URL tenants use (OS_AUTH_URL in the page's commands), when not keystone.authUrl (an internal address). */
  keystoneUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://keystone.example:5000/v3' }).optional(),
  /** PEM of the CA that signed the gateway's certificate: embedded in the page's kubeconfig and offered as ca.pem. */
  certificateAuthorityFile: nonEmpty.optional(),
  failedSignIns: z
    .strictObject({
      perAddress: fromEnvText(z.number().int().positive()).default(failedSignInDefaults.perAddress),
      perUser: fromEnvText(z.number().int().positive()).default(failedSignInDefaults.perUser),
      windowSeconds: seconds.default(failedSignInDefaults.windowSeconds),
      maxTracked: fromEnvText(z.number().int().positive()).default(failedSignInDefaults.maxTracked),
    })
    .default(failedSignInDefaults),
});
const uiDefaults = { enabled: true, failedSignIns: failedSignInDefaults };

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      host: nonEmpty.default('127.0.0.1'),
      port: port.default(8443),
      tls: tlsFiles.optional(),
      /** A new connection (after its TLS handshake) that sends no byte within this is closed. */
      firstByteTimeoutSeconds: seconds.default(10),
      /** A request's head (request line and headers) must be complete this long after it began, the first one from accept. */
      headersTimeoutSeconds: seconds.default(30),
      /** A kept-alive connection idle between requests is closed after this long. */
      idleTimeoutSeconds: seconds.default(65),
    })
    .default({ host: '127.0.0.1', port: 8443, firstByteTimeoutSeconds: 10, headersTimeoutSeconds: 30, idleTimeoutSeconds: 65 }),
  keystone: z.strictObject({
    authUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://keystone:5000/v3' }),
    serviceCredentials: z.union([applicationCredentials, passwordCredentials], {
      error: 'needs {username, password, userDomainName, projectName, projectDomainName} or {applicationCredentialId, applicationCredentialSecret}',
    }),
    cacheTtlSeconds: seconds.default(300),
    cacheMaxEntries: fromEnvText(z.number().int().positive()).default(50_000),
    negativeCacheTtlSeconds: seconds.default(10),
    negativeCacheMaxEntries: fromEnvText(z.number().int().positive()).default(10_000),
    timeoutSeconds: seconds.default(5),
    /** Calls at Keystone at once (a burst of new tokens waits its turn instead of timing out inside Keystone). */
    maxConcurrentRequests: fromEnvText(z.number().int().positive()).default(8),
    caFile: nonEmpty.optional(),
    /**
     * How often Keystone's revocation events are read (GET /v3/OS-REVOKE/events): a revoked token stops working on every
     * replica within about this long, and the sessions it opened end. 0: not followed (revoked tokens work until
     * cacheTtlSeconds).
     */
    revocationPollSeconds: fromEnvText(z.number().nonnegative()).default(10),
    /**
     * The gateway's service type in the Keystone catalog (`zun-gateway register --type`): application credentials with
     * access rules for this service (zun-gateway docker-config makes them) are accepted for the requests they allow.
     */
    serviceType: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be letters, digits and dashes, as Keystone service types are').default('zun-gateway'),
    /**
     * A cached token still in use is validated at Keystone again, in the background, once its last validation is this
     * old: Keystone records no revocation event when a role is removed from a user, so this bounds how long a removed
     * role keeps working (and ends the sessions of a token that lost roles). At most one validation per token in use
     * and interval on each replica. 0: never (a removed role works until cacheTtlSeconds).
     */
    revalidateSeconds: fromEnvText(z.number().nonnegative()).default(60),
  }),
  k8s: k8s.optional(),
  docker: docker.optional(),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .default({ level: 'info' }),
  /** One record per API request and upgraded session (who, what, outcome); see docs/operations.md. */
  audit: z
    .discriminatedUnion('destination', [
      z.strictObject({ destination: z.literal('stdout') }),
      z.strictObject({ destination: z.literal('file'), file: nonEmpty }),
      z.strictObject({ destination: z.literal('off') }),
    ])
    .default({ destination: 'stdout' }),
  /** Prometheus /metrics on its own listener (keep it off the tenant-facing address); omitted: no metrics listener. */
  metrics: z
    .strictObject({
      host: nonEmpty.default('127.0.0.1'),
      port,
    })
    .optional(),
  /** Upgraded sessions (exec, attach, port-forward, docker attach and exec). */
  sessions: z
    .strictObject({
      /** A session with no byte either way for this long is closed (0: never, kubectl port-forward may idle for hours). */
      idleTimeoutSeconds: fromEnvText(z.number().nonnegative()).default(0),
    })
    .default({ idleTimeoutSeconds: 0 }),
  ui: ui.default(uiDefaults),
  shutdown: z
    .strictObject({
      graceSeconds: fromEnvText(z.number().min(0)).default(25),
    })
    .default({ graceSeconds: 25 }),
});

export type GatewayConfig = z.infer<typeof configSchema>;
export type KeystoneConfig = GatewayConfig['keystone'];
export type ServiceCredentials = KeystoneConfig['serviceCredentials'];
export type K8sConfig = NonNullable<GatewayConfig['k8s']>;
/** One cluster of /k8s, every setting resolved (the shared ones included). */
export type K8sClusterConfig = K8sConfig['clusters'][number];
export type ImpersonationConfig = K8sConfig['impersonation'];
export type TenancyConfig = NonNullable<K8sConfig['tenancy']>;
export type PodSecurityLevel = TenancyConfig['podSecurity']['level'];
export type DockerConfig = NonNullable<GatewayConfig['docker']>;
export type DockerLimits = DockerConfig['limits'];
export type UiConfig = GatewayConfig['ui'];
