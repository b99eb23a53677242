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
    this.tokens.set(token, spec);
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
      const expiresAt = spec.expiresAt ?? new Date(Date.now() + 3600_000);
      if (expiresAt.getTime() <= Date.now()) return this.json(res, 404, { error: { code: 404 } });
      const user = spec.user ?? 'alice';
      const token: Record<string, unknown> = {
        expires_at: expiresAt.toISOString(),
        user: { id: spec.userId ?? `${user}-id`, name: user, domain: { id: 'default', name: 'Default' } },
        roles: (spec.roles ?? ['member', 'reader']).map((r) => ({ id: `${r}-id`, name: r })),
      };
      if (spec.project !== null) {
        const p = spec.project ?? { id: 'alpha-id', name: 'alpha' };
        if (spec.domainScope === undefined && !spec.system) token.project = { ...p, domain: { id: 'default', name: 'Default' } };
      }
      if (spec.domainScope) token.domain = spec.domainScope;
      if (spec.system) token.system = { all: true };
      if (spec.accessRules) token.application_credential = { id: 'ac', restricted: true, access_rules: spec.accessRules };
      return this.json(res, 200, { token });
    }
    return this.json(res, 405, { error: { code: 405 } });
  }
}
