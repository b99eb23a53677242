import { z } from 'zod';
import { tokenBodySchema, type KeystoneClient, type KeystoneResponse } from '../auth/keystone-client.js';
import { GatewayError } from '../errors.js';
import { inputError } from '../config/openstack-inputs.js';

/**
 * The parts of Keystone's identity API the user-side commands call with the user's own token: the catalog (where the
 * gateway is), services and endpoints (register, an operator's), application credentials (docker-config, a tenant's).
 */

/** Keystone answered 401 to a call with this token: it was revoked, or expired since it was cached. */
const tokenRefused = (message: string): GatewayError => new GatewayError('client_token_refused', message);
/** Keystone answered, but with a failure or a body the identity API does not give. */
const keystoneFailed = (message: string): GatewayError => new GatewayError('keystone_failed', message);

const endpointSchema = z.object({
  id: z.string(),
  interface: z.string(),
  url: z.string(),
  region_id: z.string().nullish(),
  region: z.string().nullish(),
  enabled: z.boolean().optional(),
});
const serviceSchema = z.object({ id: z.string(), type: z.string(), name: z.string().nullish(), enabled: z.boolean().optional() });
const catalogSchema = z.object({ catalog: z.array(serviceSchema.extend({ endpoints: z.array(endpointSchema) })) });
const accessRuleSchema = z.object({ service: z.string(), method: z.string(), path: z.string() });
const applicationCredentialSchema = z.object({
  id: z.string(),
  name: z.string(),
  project_id: z.string().nullish(),
  access_rules: z.array(accessRuleSchema).nullish(),
});

export type CatalogEntry = z.infer<typeof catalogSchema>['catalog'][number];
export type Endpoint = z.infer<typeof endpointSchema>;
export type Service = z.infer<typeof serviceSchema>;
export type AccessRule = z.infer<typeof accessRuleSchema>;
export type ApplicationCredential = z.infer<typeof applicationCredentialSchema>;

/** Who the token is: the user and project an application credential is made for. */
export interface TokenOwner {
  readonly userId: string;
  readonly userName: string;
  readonly projectId: string;
  readonly projectName: string;
  /** Set when the token itself comes from an application credential (Keystone lets those make no others). */
  readonly applicationCredentialId?: string;
}

/** Keystone's own words for a refusal (`error.message`), on one bounded line: never a secret, often the reason. */
function keystoneMessage(body: unknown): string {
  const message = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof message === 'string' ? `: ${message.replace(/\s+/g, ' ').trim().slice(0, 300)}` : '';
}

export class IdentityApi {
  constructor(
    private readonly client: KeystoneClient,
    private readonly token: string,
    /** Who the token is, for messages (never a secret): "user alice", "OS_TOKEN". */
    private readonly who: string,
  ) {}

  /**
   * The call's answer when its status is one of `ok`; otherwise an error saying what was refused and what to do:
   * `hint` is added to a 403 (which role the call needs).
   */
  private async expect(what: string, res: Promise<KeystoneResponse>, ok: readonly number[], hint = ''): Promise<KeystoneResponse> {
    const r = await res;
    if (ok.includes(r.status)) return r;
    const said = keystoneMessage(r.body);
    if (r.status === 401) throw tokenRefused(`Keystone no longer accepts the token of ${this.who} (HTTP 401${said}); run the command again`);
    if (r.status === 403) throw inputError(`Keystone refused to let ${this.who} ${what} (HTTP 403${said})${hint}`);
    if (r.status >= 500) throw keystoneFailed(`Keystone failed to ${what} (HTTP ${r.status})`);
    throw inputError(`Keystone could not ${what} (HTTP ${r.status}${said})`);
  }

  private parse<T>(what: string, schema: z.ZodType<T>, body: unknown): T {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw keystoneFailed(`Keystone's answer to ${what} is not what the identity API v3 returns`);
    return parsed.data;
  }

  async owner(): Promise<TokenOwner> {
    // A user may validate their own token: X-Auth-Token and X-Subject-Token are the same.
    const r = await this.expect('read its own token', this.client.validateToken(this.token, this.token), [200]);
    const { token } = this.parse('GET /v3/auth/tokens', tokenBodySchema, r.body);
    if (token.project === undefined) {
      throw inputError(`the token of ${this.who} is not scoped to a project: set OS_PROJECT_NAME (or OS_PROJECT_ID)`);
    }
    return {
      userId: token.user.id,
      userName: token.user.name,
      projectId: token.project.id,
      projectName: token.project.name,
      ...(token.application_credential !== undefined ? { applicationCredentialId: token.application_credential.id } : {}),
    };
  }

  async catalog(): Promise<CatalogEntry[]> {
    const r = await this.expect('read the service catalog', this.client.call('GET', 'auth/catalog', this.token), [200]);
    return this.parse('GET /v3/auth/catalog', catalogSchema, r.body).catalog;
  }

  async services(type: string): Promise<Service[]> {
    const r = await this.expect('list the services', this.client.call('GET', `services?type=${encodeURIComponent(type)}`, this.token), [200], ADMIN_HINT);
    return this.parse('GET /v3/services', z.object({ services: z.array(serviceSchema) }), r.body).services;
  }

  async createService(service: { type: string; name: string; description: string }): Promise<Service> {
    const r = await this.expect('create a service', this.client.call('POST', 'services', this.token, { service: { ...service, enabled: true } }), [201], ADMIN_HINT);
    return this.parse('POST /v3/services', z.object({ service: serviceSchema }), r.body).service;
  }

  async updateService(id: string, patch: Record<string, unknown>): Promise<void> {
    await this.expect('update a service', this.client.call('PATCH', `services/${encodeURIComponent(id)}`, this.token, { service: patch }), [200], ADMIN_HINT);
  }

  async endpoints(serviceId: string, iface: string): Promise<Endpoint[]> {
    const query = `service_id=${encodeURIComponent(serviceId)}&interface=${encodeURIComponent(iface)}`;
    const r = await this.expect('list the endpoints', this.client.call('GET', `endpoints?${query}`, this.token), [200], ADMIN_HINT);
    return this.parse('GET /v3/endpoints', z.object({ endpoints: z.array(endpointSchema) }), r.body).endpoints;
  }

  async createEndpoint(endpoint: { service_id: string; interface: string; url: string; region_id?: string | undefined }): Promise<Endpoint> {
    const body = { endpoint: { ...endpoint, enabled: true } };
    const r = await this.expect('create an endpoint', this.client.call('POST', 'endpoints', this.token, body), [201], ADMIN_HINT);
    return this.parse('POST /v3/endpoints', z.object({ endpoint: endpointSchema }), r.body).endpoint;
  }

  async updateEndpoint(id: string, patch: Record<string, unknown>): Promise<void> {
    await this.expect('update an endpoint', this.client.call('PATCH', `endpoints/${encodeURIComponent(id)}`, this.token, { endpoint: patch }), [200], ADMIN_HINT);
  }

  async deleteEndpoint(id: string): Promise<void> {
    await this.expect('delete an endpoint', this.client.call('DELETE', `endpoints/${encodeURIComponent(id)}`, this.token), [204], ADMIN_HINT);
  }

  async applicationCredentials(userId: string, name: string): Promise<ApplicationCredential[]> {
    const path = `users/${encodeURIComponent(userId)}/application_credentials?name=${encodeURIComponent(name)}`;
    const r = await this.expect('list its application credentials', this.client.call('GET', path, this.token), [200]);
    return this.parse('GET application_credentials', z.object({ application_credentials: z.array(applicationCredentialSchema) }), r.body).application_credentials;
  }

  /** Creates one; the secret is in the answer only, once. */
  async createApplicationCredential(
    userId: string,
    credential: { name: string; description: string; access_rules?: readonly AccessRule[] },
  ): Promise<ApplicationCredential & { secret: string }> {
    const r = await this.expect(
      'create an application credential',
      this.client.call('POST', `users/${encodeURIComponent(userId)}/application_credentials`, this.token, { application_credential: credential }),
      [201],
      APPLICATION_CREDENTIAL_HINT,
    );
    const schema = z.object({ application_credential: applicationCredentialSchema.extend({ secret: z.string().min(1) }) });
    return this.parse('POST application_credentials', schema, r.body).application_credential;
  }

  async deleteApplicationCredential(userId: string, id: string): Promise<void> {
    const path = `users/${encodeURIComponent(userId)}/application_credentials/${encodeURIComponent(id)}`;
    await this.expect('delete an application credential', this.client.call('DELETE', path, this.token), [204, 404], APPLICATION_CREDENTIAL_HINT);
  }
}

const ADMIN_HINT = ': services and endpoints are the admin role\'s to change; run this with admin credentials (OS_CLOUD or OS_* of an admin)';
const APPLICATION_CREDENTIAL_HINT =
  ': log in with your password (OS_PASSWORD or a clouds.yaml password), not with an application credential: Keystone lets those make or delete no others';
