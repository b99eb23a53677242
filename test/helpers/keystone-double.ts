import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Changes } from './changes.js';

export interface TokenSpec {
  readonly user?: string;
  readonly userId?: string;
  readonly project?: { id: string; name: string } | null;
  readonly domainScope?: { id: string; name: string };
  readonly system?: boolean;
  readonly roles?: readonly string[];
  readonly expiresAt?: Date;
  readonly accessRules?: readonly unknown[];
  /** Set for a token made from an application credential. */
  readonly applicationCredentialId?: string;
  /** When Keystone issued it (default: when it was registered). */
  readonly issuedAt?: Date;
}

/** A revocation event as GET /v3/OS-REVOKE/events lists it. */
export interface RevocationEventSpec {
  readonly user_id?: string;
  readonly project_id?: string;
  readonly audit_id?: string;
  readonly role_id?: string;
  readonly domain_id?: string;
  readonly expires_at?: string;
}

/** A user who can log in with a password, and their projects with the roles they have there. */
export interface DoubleUser {
  readonly id: string;
  readonly name: string;
  readonly password: string;
  readonly projects: Readonly<Record<string, { readonly id: string; readonly roles: readonly string[] }>>;
}

export interface DoubleApplicationCredential {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly secret: string;
  readonly user: DoubleUser;
  readonly project: { readonly id: string; readonly name: string };
  readonly roles: readonly string[];
  readonly accessRules?: ReadonlyArray<{ service: string; method: string; path: string; id: string }>;
}

interface DoubleService {
  id: string;
  type: string;
  name: string;
  description: string;
  enabled: boolean;
}

interface DoubleEndpoint {
  id: string;
  service_id: string;
  interface: string;
  url: string;
  region_id: string | null;
  region: string | null;
  enabled: boolean;
}

const ACCESS_RULE_METHOD = /^(POST|GET|HEAD|PATCH|PUT|DELETE)$/;
const ID_STRING = /^[a-zA-Z0-9-]+$/;

/**
 * A Keystone v3 stand-in for unit and integration tests: issues service tokens, validates registered user tokens,
 * counts calls, and can be made slow, failing, or unreachable.
 */
export class KeystoneDouble {
  private server: http.Server;
  private port = 0;
  private readonly tokens = new Map<string, TokenSpec>();
  private serviceTokens = new Set<string>();
  private serial = 0;
  /** How many tokens POST /v3/auth/tokens issued (service-token-1 to service-token-<issued>); refused logins are not counted. */
  get issued(): number {
    return this.serial;
  }
  issueCalls = 0;
  validateCalls = 0;
  /** Requests whose body has arrived, answered or not yet; `changes` tells of each. */
  received = 0;
  readonly changes = new Changes();
  private readonly held: Array<() => void> = [];

  /** Answers the requests held while delayMs was Infinity. */
  answerHeld(): void {
    for (const answer of this.held.splice(0)) answer();
  }
  /** The `auth` part of every POST /v3/auth/tokens body, in order (methods and scope, to check what was asked). */
  readonly issueRequests: Array<{ identity?: { methods?: string[] }; scope?: unknown }> = [];
  /** When true, every validation answers 401 as if no service token were good, even a freshly issued one. */
  rejectAllServiceTokens = false;
  /** When true, every login (POST /v3/auth/tokens) answers 401, as for the gateway's wrong password. */
  refuseLogins = false;
  /** How long each answer waits; Infinity: held until answerHeld() (a silent Keystone). */
  delayMs = 0;
  /** When set, every answer is this HTTP status. */
  failWith: number | undefined;
  /** When set, a token validation answers 200 with this text as its body (a proxy's error page, a broken Keystone). */
  validationBody: string | undefined;
  serviceTokenLifetimeMs = 3600_000;
  /**
   * The identity API beyond tokens, as Keystone answers it: users who log in with a password (their tokens validate as
   * themselves), the catalog's services and endpoints (admin-only changes), application credentials (made by their
   * owner with a password token; their secret shown once; access rules stored and put in their tokens).
   */
  readonly users = new Map<string, DoubleUser>();
  readonly services: DoubleService[] = [];
  readonly endpoints: DoubleEndpoint[] = [];
  readonly applicationCredentials = new Map<string, DoubleApplicationCredential>();
  readonly regions = new Set(['RegionOne']);
  /** Every call of the identity API beyond /auth/tokens: method and path with query. */
  readonly identityCalls: Array<{ method: string; path: string }> = [];
  /** When set, merged into the token of every login of a known user or credential (a token unlike what was asked). */
  loginOverride: Partial<TokenSpec> | undefined;
  /** DELETE /v3/auth/tokens calls, and the tokens they revoked. */
  revokeCalls = 0;
  readonly revoked: string[] = [];
  /** As a Keystone before Train: application credentials with access_rules are refused (400). */
  noAccessRules = false;
  /** Project id -> its tags (GET /v3/projects/{id}); a project not listed has none. */
  readonly projectTags = new Map<string, string[]>();
  /** When set, GET /v3/projects/{id} answers this status (403: a policy that keeps members from reading their project). */
  projectReadStatus: number | undefined;
  private ids = 0;

  constructor() {
    this.server = this.makeServer();
  }

  /** Started, and knowing `alice-token`: alice, a member of project alpha (p-alpha). */
  static async withAlice(): Promise<KeystoneDouble> {
    const keystone = await new KeystoneDouble().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' }, roles: ['member'] });
    return keystone;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v3`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening (connections refused) until start() again on the same port. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server = this.makeServer();
  }

  addUser(user: DoubleUser): DoubleUser {
    this.users.set(user.id, user);
    return user;
  }

  register(token: string, spec: TokenSpec = {}): void {
    this.tokens.set(token, { issuedAt: new Date(), ...spec });
  }

  /** The revocation events recorded so far (GET /v3/OS-REVOKE/events lists those after `since`). */
  readonly revocationEvents: Array<RevocationEventSpec & { issued_before: string; revoked_at: string }> = [];
  /** When set, GET /v3/OS-REVOKE/events answers this status (403: the gateway lacks identity:list_revoke_events). */
  revocationEventsStatus: number | undefined;
  revocationEventCalls = 0;
  private readonly pollWaiters: Array<{ readonly count: number; readonly resolve: () => void }> = [];

  /**
   * Resolves once `more` further revocation polls have reached this Keystone. The gateway sends a poll only after the
   * previous one was applied, so after two more, everything listed before them has been applied.
   */
  revocationPolled(more: number): Promise<void> {
    const count = this.revocationEventCalls + more;
    return new Promise((resolve) => this.pollWaiters.push({ count, resolve }));
  }

  /**
   * Keystone revokes as `openstack token revoke` or a user disabled do: an event is recorded, and the tokens it matches
   * (by the fields given, here user, project, audit id or role) are no longer valid. (A role removed from a user records
   * no event in Keystone: re-register the token with fewer roles, or revoke() it, for that.)
   */
  revokeByEvent(event: RevocationEventSpec, at = new Date()): void {
    const stamp = at.toISOString();
    this.revocationEvents.push({ ...event, issued_before: stamp, revoked_at: stamp });
    for (const [token, spec] of this.tokens) {
      const body = this.tokenBody(token, spec);
      const matches =
        (event.user_id === undefined || event.user_id === (body.user as { id: string }).id) &&
        (event.project_id === undefined || event.project_id === (body.project as { id: string } | undefined)?.id) &&
        (event.audit_id === undefined || event.audit_id === (body.audit_ids as string[])[0]) &&
        (event.role_id === undefined || (body.roles as Array<{ id: string }>).some((r) => r.id === event.role_id)) &&
        (spec.issuedAt ?? new Date(0)).getTime() <= at.getTime();
      if (matches) this.tokens.delete(token);
    }
  }

  /** Keystone revokes a user token (`openstack token revoke`, or its user's password changed): validating it answers 404. */
  revoke(token: string): void {
    this.tokens.delete(token);
  }

  /** Keystone forgets every service token it issued: the next validation with one answers 401. */
  revokeServiceTokens(): void {
    this.serviceTokens = new Set();
  }

  private makeServer(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received += 1;
        this.changes.notify();
        if (this.delayMs === Infinity) {
          this.held.push(() => this.answer(req, res, Buffer.concat(chunks).toString('utf8')));
          return;
        }
        setTimeout(() => this.answer(req, res, Buffer.concat(chunks).toString('utf8')), this.delayMs);
      });
    });
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    if (this.failWith !== undefined) return this.json(res, this.failWith, { error: { code: this.failWith } });
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && (path === '/v3' || path === '/v3/')) return this.json(res, 200, { version: { id: 'v3.14' } });
    if (req.method === 'GET' && path === '/v3/OS-REVOKE/events') {
      this.revocationEventCalls += 1;
      for (const w of this.pollWaiters.filter((x) => x.count <= this.revocationEventCalls)) {
        this.pollWaiters.splice(this.pollWaiters.indexOf(w), 1);
        w.resolve();
      }
      if (this.revocationEventsStatus !== undefined) return this.json(res, this.revocationEventsStatus, { error: { code: this.revocationEventsStatus } });
      const service = req.headers['x-auth-token'];
      if (typeof service !== 'string' || !this.serviceTokens.has(service)) return this.json(res, 401, { error: { code: 401 } });
      const since = new URL(`http://x${req.url ?? ''}`).searchParams.get('since');
      const after = since === null ? Number.NEGATIVE_INFINITY : Date.parse(since);
      return this.json(res, 200, { events: this.revocationEvents.filter((e) => Date.parse(e.revoked_at) > after) });
    }
    if (path !== '/v3/auth/tokens') return this.identityApi(req, res, body);
    if (req.method === 'POST') {
      this.issueCalls += 1;
      let auth: { identity?: { methods?: string[] }; scope?: unknown } | undefined;
      try {
        auth = (JSON.parse(body) as { auth?: typeof auth }).auth;
      } catch {
        auth = undefined;
      }
      if (auth !== undefined) this.issueRequests.push(auth);
      if (this.refuseLogins) return this.json(res, 401, { error: { code: 401, title: 'Unauthorized' } });
      const method = auth?.identity?.methods?.[0];
      if (method !== 'password' && method !== 'application_credential') return this.json(res, 400, { error: { code: 400 } });
      const known = this.knownLogin(auth as { identity: Record<string, unknown>; scope?: unknown });
      if (known === 'refused') return this.json(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      if (known !== undefined) {
        this.serial += 1;
        const token = `user-token-${this.serial}`;
        this.register(token, { ...known, ...this.loginOverride });
        return this.json(res, 201, { token: this.tokenBody(token, this.tokens.get(token) ?? known) }, { 'x-subject-token': token });
      }
      this.serial += 1;
      const token = `service-token-${this.serial}`;
      this.serviceTokens.add(token);
      const expires = new Date(Date.now() + this.serviceTokenLifetimeMs).toISOString();
      return this.json(
        res,
        201,
        {
          token: {
            methods: [method],
            expires_at: expires,
            issued_at: new Date().toISOString(),
            user: { id: 'gw', name: 'gateway', domain: { id: 'default', name: 'Default' } },
            // Password auth asks for a project scope; an application credential carries its own.
            project: { id: 'service-id', name: 'service', domain: { id: 'default', name: 'Default' } },
            roles: [{ id: 'service-role-id', name: 'service' }],
          },
        },
        { 'x-subject-token': token },
      );
    }
    if (req.method === 'GET') {
      this.validateCalls += 1;
      if (this.validationBody !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(this.validationBody);
        return;
      }
      const service = req.headers['x-auth-token'];
      const subject = req.headers['x-subject-token'];
      // A user may validate their own token; any other validation needs the gateway's (service) token.
      const own = typeof service === 'string' && service === subject && this.tokens.has(service);
      if (!own && (this.rejectAllServiceTokens || typeof service !== 'string' || !this.serviceTokens.has(service))) return this.json(res, 401, { error: { code: 401 } });
      const spec = typeof subject === 'string' ? this.tokens.get(subject) : undefined;
      if (spec === undefined) return this.json(res, 404, { error: { code: 404, message: 'Could not find token' } });
      // As Keystone: a token with access rules is not shown to a validator that does not say it understands them
      // (keystone/token/provider.py _validate_token_access_rules: 404 "Could not find token").
      const accessRulesVersion = Number(req.headers['openstack-identity-access-rules'] ?? 'NaN');
      if (spec.accessRules !== undefined && !(accessRulesVersion >= 1)) return this.json(res, 404, { error: { code: 404, message: 'Could not find token' } });
      if ((spec.expiresAt ?? new Date(Date.now() + 3600_000)).getTime() <= Date.now()) return this.json(res, 404, { error: { code: 404 } });
      return this.json(res, 200, { token: this.tokenBody(subject as string, spec) });
    }
    if (req.method === 'DELETE') {
      // As Keystone: a user may revoke their own token (X-Auth-Token and X-Subject-Token the same).
      this.revokeCalls += 1;
      const own = req.headers['x-auth-token'];
      const subject = req.headers['x-subject-token'];
      if (typeof own !== 'string' || !this.tokens.has(own)) return this.json(res, 401, { error: { code: 401 } });
      if (typeof subject !== 'string' || !this.tokens.has(subject)) return this.json(res, 404, { error: { code: 404 } });
      this.tokens.delete(subject);
      this.revoked.push(subject);
      res.writeHead(204);
      res.end();
      return;
    }
    return this.json(res, 405, { error: { code: 405 } });
  }

  /** The body Keystone gives for a registered token (GET /v3/auth/tokens). */
  private tokenBody(token: string, spec: TokenSpec): Record<string, unknown> {
    const expiresAt = spec.expiresAt ?? new Date(Date.now() + 3600_000);
    const user = spec.user ?? 'alice';
    const body: Record<string, unknown> = {
      expires_at: expiresAt.toISOString(),
      issued_at: (spec.issuedAt ?? new Date()).toISOString(),
      audit_ids: [`audit-${token}`],
      user: { id: spec.userId ?? `${user}-id`, name: user, domain: { id: 'default', name: 'Default' } },
      roles: (spec.roles ?? ['member', 'reader']).map((r) => ({ id: `${r}-id`, name: r })),
    };
    if (spec.project !== null) {
      const p = spec.project ?? { id: 'alpha-id', name: 'alpha' };
      if (spec.domainScope === undefined && !spec.system) body.project = { ...p, domain: { id: 'default', name: 'Default' } };
    }
    if (spec.domainScope) body.domain = spec.domainScope;
    if (spec.system) body.system = { all: true };
    if (spec.accessRules || spec.applicationCredentialId) {
      body.application_credential = { id: spec.applicationCredentialId ?? 'ac', restricted: true, ...(spec.accessRules ? { access_rules: spec.accessRules } : {}) };
    }
    return body;
  }

  /** A login by a user or application credential this double knows: the token's spec, 'refused', or undefined (unknown). */
  private knownLogin(auth: { identity: Record<string, unknown>; scope?: unknown }): TokenSpec | 'refused' | undefined {
    const password = (auth.identity.password as { user?: { id?: string; name?: string; password?: string } } | undefined)?.user;
    if (password !== undefined) {
      const user = [...this.users.values()].find((u) => u.id === password.id || u.name === password.name);
      if (user === undefined) return undefined;
      if (user.password !== password.password) return 'refused';
      const scope = (auth.scope as { project?: { id?: string; name?: string } } | undefined)?.project;
      const entry = Object.entries(user.projects).find(([name, p]) => p.id === scope?.id || name === scope?.name);
      // Keystone answers 401 for a project the user has no role on.
      if (entry === undefined) return 'refused';
      return { user: user.name, userId: user.id, project: { id: entry[1].id, name: entry[0] }, roles: entry[1].roles };
    }
    const ac = auth.identity.application_credential as { id?: string; secret?: string } | undefined;
    const credential = ac?.id !== undefined ? this.applicationCredentials.get(ac.id) : undefined;
    if (credential === undefined) return undefined;
    if (credential.secret !== ac?.secret) return 'refused';
    return {
      user: credential.user.name,
      userId: credential.user.id,
      project: credential.project,
      roles: credential.roles,
      applicationCredentialId: credential.id,
      ...(credential.accessRules !== undefined ? { accessRules: credential.accessRules } : {}),
    };
  }

  private nextId(prefix: string): string {
    this.ids += 1;
    return `${prefix}-${this.ids}`;
  }

  /** The catalog, services, endpoints and application credentials, with a user's token in X-Auth-Token. */
  private identityApi(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://keystone');
    const method = req.method ?? 'GET';
    this.identityCalls.push({ method, path: `${url.pathname}${url.search}` });
    const token = req.headers['x-auth-token'];
    const spec = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (spec === undefined) return this.json(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    const admin = (spec.roles ?? ['member', 'reader']).includes('admin');
    const forbidden = (): void => this.json(res, 403, { error: { code: 403, title: 'Forbidden', message: 'You are not authorized to perform the requested action.' } });
    let input: Record<string, Record<string, unknown>> = {};
    try {
      input = body === '' ? {} : (JSON.parse(body) as typeof input);
    } catch {
      return this.json(res, 400, { error: { code: 400 } });
    }
    const q = url.searchParams;
    const parts = url.pathname.split('/').slice(2);
    const catalogEndpoint = (e: DoubleEndpoint) => ({ id: e.id, interface: e.interface, region_id: e.region_id, region: e.region, url: e.url });

    // identity:get_project as Keystone's default policy has it: an admin, or a token scoped to that very project.
    if (parts[0] === 'projects' && parts.length === 2 && method === 'GET') {
      if (this.projectReadStatus !== undefined) return this.json(res, this.projectReadStatus, { error: { code: this.projectReadStatus } });
      const own = spec.project !== null && spec.domainScope === undefined && !spec.system ? (spec.project ?? { id: 'alpha-id', name: 'alpha' }) : undefined;
      if (!admin && own?.id !== parts[1]) return forbidden();
      const id = parts[1] as string;
      return this.json(res, 200, { project: { id, name: own?.id === id ? own.name : id, domain_id: 'default', enabled: true, tags: this.projectTags.get(id) ?? [] } });
    }
    if (parts[0] === 'auth' && parts[1] === 'catalog' && method === 'GET') {
      const catalog = this.services
        .filter((svc) => svc.enabled)
        .map((svc) => ({ id: svc.id, type: svc.type, name: svc.name, endpoints: this.endpoints.filter((e) => e.service_id === svc.id && e.enabled).map(catalogEndpoint) }))
        .filter((entry) => entry.endpoints.length > 0);
      return this.json(res, 200, { catalog });
    }
    if (parts[0] === 'services') {
      if (!admin) return forbidden();
      if (parts.length === 1 && method === 'GET') return this.json(res, 200, { services: this.services.filter((svc) => !q.has('type') || svc.type === q.get('type')) });
      if (parts.length === 1 && method === 'POST') {
        const svc = input.service ?? {};
        const made: DoubleService = { id: this.nextId('svc'), type: String(svc.type), name: String(svc.name ?? ''), description: String(svc.description ?? ''), enabled: svc.enabled !== false };
        this.services.push(made);
        return this.json(res, 201, { service: made });
      }
      const found = this.services.find((svc) => svc.id === parts[1]);
      if (found === undefined) return this.json(res, 404, { error: { code: 404 } });
      if (method === 'PATCH') {
        Object.assign(found, input.service ?? {});
        return this.json(res, 200, { service: found });
      }
    }
    if (parts[0] === 'endpoints') {
      if (!admin) return forbidden();
      if (parts.length === 1 && method === 'GET') {
        const list = this.endpoints.filter(
          (e) => (!q.has('service_id') || e.service_id === q.get('service_id')) && (!q.has('interface') || e.interface === q.get('interface')) && (!q.has('region_id') || e.region_id === q.get('region_id')),
        );
        return this.json(res, 200, { endpoints: list });
      }
      if (parts.length === 1 && method === 'POST') {
        const e = input.endpoint ?? {};
        const region = typeof e.region_id === 'string' ? e.region_id : null;
        // keystone/catalog/core.py _assert_region_exists: a ValidationError (400).
        if (region !== null && !this.regions.has(region)) return this.json(res, 400, { error: { code: 400, message: `Expecting to find endpoint region_id in region table.` } });
        const made: DoubleEndpoint = { id: this.nextId('ep'), service_id: String(e.service_id), interface: String(e.interface), url: String(e.url), region_id: region, region, enabled: e.enabled !== false };
        this.endpoints.push(made);
        return this.json(res, 201, { endpoint: made });
      }
      const index = this.endpoints.findIndex((e) => e.id === parts[1]);
      if (index === -1) return this.json(res, 404, { error: { code: 404 } });
      if (method === 'PATCH') {
        Object.assign(this.endpoints[index] as DoubleEndpoint, input.endpoint ?? {});
        return this.json(res, 200, { endpoint: this.endpoints[index] });
      }
      if (method === 'DELETE') {
        this.endpoints.splice(index, 1);
        res.writeHead(204).end();
        return;
      }
    }
    if (parts[0] === 'users' && parts[2] === 'application_credentials') {
      const user = this.users.get(parts[1] ?? '');
      if (user === undefined || spec.userId !== user.id) return forbidden();
      const shown = (c: DoubleApplicationCredential) => ({
        id: c.id,
        name: c.name,
        description: c.description,
        project_id: c.project.id,
        roles: c.roles.map((r) => ({ id: `${r}-id`, name: r })),
        unrestricted: false,
        access_rules: c.accessRules ?? [],
      });
      const mine = [...this.applicationCredentials.values()].filter((c) => c.user.id === user.id);
      if (parts.length === 3 && method === 'GET') return this.json(res, 200, { application_credentials: mine.filter((c) => !q.has('name') || c.name === q.get('name')).map(shown) });
      if (parts.length === 3 && method === 'POST') {
        if (spec.applicationCredentialId !== undefined) {
          return this.json(res, 403, { error: { code: 403, message: "Using method 'application_credential' is not allowed for managing additional application credentials." } });
        }
        const ac = input.application_credential ?? {};
        if (this.noAccessRules && ac.access_rules !== undefined) {
          return this.json(res, 400, { error: { code: 400, message: "Invalid input for field '/': Additional properties are not allowed ('access_rules' was unexpected)" } });
        }
        const rules = ac.access_rules as Array<{ service?: unknown; method?: unknown; path?: unknown }> | undefined;
        if (rules !== undefined && !rules.every((r) => typeof r.method === 'string' && ACCESS_RULE_METHOD.test(r.method) && typeof r.service === 'string' && ID_STRING.test(r.service) && typeof r.path === 'string' && r.path.startsWith('/'))) {
          return this.json(res, 400, { error: { code: 400, message: "Invalid input for field 'access_rules'" } });
        }
        if (mine.some((c) => c.name === ac.name)) return this.json(res, 409, { error: { code: 409, message: 'Duplicate entry found with name ' + String(ac.name) } });
        const made: DoubleApplicationCredential = {
          id: this.nextId('ac'),
          name: String(ac.name),
          description: String(ac.description ?? ''),
          secret: `secret-${this.nextId('s')}-${Math.random().toString(36).slice(2)}`,
          user,
          project: (spec.project ?? { id: 'alpha-id', name: 'alpha' }) as { id: string; name: string },
          roles: spec.roles ?? ['member', 'reader'],
          ...(rules !== undefined ? { accessRules: rules.map((r) => ({ service: String(r.service), method: String(r.method), path: String(r.path), id: this.nextId('rule') })) } : {}),
        };
        this.applicationCredentials.set(made.id, made);
        return this.json(res, 201, { application_credential: { ...shown(made), secret: made.secret } });
      }
      const found = mine.find((c) => c.id === parts[3]);
      if (found === undefined) return this.json(res, 404, { error: { code: 404, message: 'Could not find application credential' } });
      if (method === 'GET') return this.json(res, 200, { application_credential: shown(found) });
      if (method === 'DELETE') {
        if (spec.applicationCredentialId !== undefined) return forbidden();
        this.applicationCredentials.delete(found.id);
        res.writeHead(204).end();
        return;
      }
    }
    return this.json(res, 404, { error: { code: 404 } });
  }
}
