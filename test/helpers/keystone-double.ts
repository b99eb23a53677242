import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenSpec {
  readonly user?: string;
  readonly userId?: string;
  readonly project?: { id: string; name: string } | null;
  readonly domainScope?: { id: string; name: string };
  readonly system?: boolean;
  readonly roles?: readonly string[];
  readonly expiresAt?: Date;
  readonly accessRules?: readonly unknown[];
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
  /** The `auth` part of every POST /v3/auth/tokens body, in order (methods and scope, to check what was asked). */
  readonly issueRequests: Array<{ identity?: { methods?: string[] }; scope?: unknown }> = [];
  /** When true, every validation answers 401 as if no service token were good, even a freshly issued one. */
  rejectAllServiceTokens = false;
  /** When true, every login (POST /v3/auth/tokens) answers 401, as for the gateway's wrong password. */
  refuseLogins = false;
  delayMs = 0;
  /** When set, every answer is this HTTP status. */
  failWith: number | undefined;
  /** When set, a token validation answers 200 with this text as its body (a proxy's error page, a broken Keystone). */
  validationBody: string | undefined;
  serviceTokenLifetimeMs = 3600_000;

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
    if (path !== '/v3/auth/tokens') return this.json(res, 404, { error: { code: 404 } });
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
      if (this.rejectAllServiceTokens || typeof service !== 'string' || !this.serviceTokens.has(service)) return this.json(res, 401, { error: { code: 401 } });
      const subject = req.headers['x-subject-token'];
      const spec = typeof subject === 'string' ? this.tokens.get(subject) : undefined;
      if (spec === undefined) return this.json(res, 404, { error: { code: 404, message: 'Could not find token' } });
      // As Keystone: a token with access rules is not shown to a validator that does not say it understands them
      // (keystone/token/provider.py _validate_token_access_rules: 404 "Could not find token").
      const accessRulesVersion = Number(req.headers['openstack-identity-access-rules'] ?? 'NaN');
      if (spec.accessRules !== undefined && !(accessRulesVersion >= 1)) return this.json(res, 404, { error: { code: 404, message: 'Could not find token' } });
      if ((spec.expiresAt ?? new Date(Date.now() + 3600_000)).getTime() <= Date.now()) return this.json(res, 404, { error: { code: 404 } });
      return this.json(res, 200, { token: this.tokenBody(subject as string, spec) });
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
    if (spec.accessRules) body.application_credential = { id: 'ac', restricted: true, access_rules: spec.accessRules };
    return body;
  }
}
