import { Agent, request } from 'undici';
import { z } from 'zod';
import type { ServiceCredentials } from '../config/schema.js';
import { GatewayError, hasCode, systemCode } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { keystoneAuthBody, serviceAuthInputs, type KeystoneAuthInputs } from './auth-body.js';
import { KeystoneGate } from './keystone-gate.js';

/**
 * Keystone could not be asked, or answered in a way that tells nothing about the token (`keystone_unavailable`, or
 * `keystone_busy` when too many calls waited): never the user's fault. The words are for the log; what the user is
 * told is decided by the callers.
 */
export const keystoneDown = (message: string, cause?: unknown): GatewayError =>
  new GatewayError('keystone_unavailable', message, cause !== undefined ? { cause } : {});

/**
 * Keystone answers, but refuses the gateway itself (its service credentials, or its right to validate tokens): the
 * operator's to fix, not the user's, and not a passing outage.
 */
export const gatewayRefused = (message: string): GatewayError => new GatewayError('keystone_refuses_gateway', message);

export interface KeystoneResponse {
  readonly status: number;
  readonly subjectToken: string | undefined;
  readonly body: unknown;
}

export interface KeystoneClientOptions {
  /** The v3 endpoint, e.g. http://127.0.0.1:5000/v3 */
  readonly authUrl: string;
  readonly timeoutMs: number;
  /** Calls at Keystone at once; more wait their turn (keystone-gate.ts). Default 8. */
  readonly maxConcurrent?: number;
  /** How long a call may wait for its turn before it fails as unavailable. Default 6 x timeoutMs. */
  readonly maxQueueWaitMs?: number;
  readonly ca?: Buffer;
  readonly metrics?: Metrics;
  /** The signal that ends one call after `ms` (tests fire it by hand). Default AbortSignal.timeout. */
  readonly deadline?: (ms: number) => AbortSignal;
}

/** What a Keystone call was for: the label of its metrics. */
type KeystoneOperation = 'issue_token' | 'validate_token' | 'revoke_token' | 'ping' | 'revocation_events' | 'read_project' | 'identity_api';

const MAX_KEYSTONE_BODY = 4 * 1024 * 1024;

/** The access-rules version the gateway declares when validating (keystonemiddleware sends the same). */
const ACCESS_RULES_VERSION = '1.0';

const namedRef = z.object({ id: z.string(), name: z.string() });
const domainRef = z.object({ id: z.string(), name: z.string().optional() });

/** The parts of Keystone's token body (GET/POST /v3/auth/tokens) the gateway reads. */
export const tokenBodySchema = z.object({
  token: z.object({
    expires_at: z.string(),
    /** When the token was issued and its audit ids: what revocation events are matched against (revocation.ts). */
    issued_at: z.string().optional(),
    audit_ids: z.array(z.string()).optional(),
    user: z.object({ id: z.string(), name: z.string(), domain: domainRef }),
    project: z.object({ id: z.string(), name: z.string(), domain: domainRef }).optional(),
    domain: namedRef.optional(),
    system: z.record(z.string(), z.unknown()).optional(),
    roles: z.array(namedRef).optional(),
    application_credential: z
      .object({
        id: z.string(),
        restricted: z.boolean().optional(),
        access_rules: z.array(z.unknown()).optional(),
      })
      .optional(),
    'OS-TRUST:trust': z
      .looseObject({ id: z.string(), trustor_user: z.object({ id: z.string() }).optional(), trustee_user: z.object({ id: z.string() }).optional() })
      .optional(),
    'OS-OAUTH1': z.looseObject({ consumer_id: z.string().optional(), access_token_id: z.string().optional() }).optional(),
  }),
});
export type TokenBody = z.infer<typeof tokenBodySchema>;

/** Only the HTTP conversation with Keystone; what the answers mean is decided by the callers. */
export class KeystoneClient {
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly gate: KeystoneGate;
  /**
   * When Keystone last answered a call (any status). A call that fails as unavailable while Keystone answered others
   * meanwhile met a stuck worker or a broken connection, not a Keystone that is down (a uwsgi worker of the e2e
   * Keystone hung on one request during a burst, its three siblings answering on: bench scenario 6, 2026-11-30).
   */
  private lastAnswerAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: KeystoneClientOptions) {
    this.gate = new KeystoneGate(
      options.maxConcurrent ?? 8,
      options.maxQueueWaitMs ?? options.timeoutMs * 6,
      (waited) => new GatewayError('keystone_busy', `Keystone is busy: no call could be made within ${waited} ms`),
    );
    this.base = new URL(options.authUrl.endsWith('/') ? options.authUrl : `${options.authUrl}/`);
    this.agent = new Agent({
      connections: 64,
      connectTimeout: options.timeoutMs,
      maxResponseSize: MAX_KEYSTONE_BODY,
      ...(options.ca ? { connect: { ca: options.ca } } : {}),
    });
  }

  get authUrl(): string {
    return this.options.authUrl;
  }

  /** POST /v3/auth/tokens with the gateway's own credentials. */
  issueServiceToken(credentials: ServiceCredentials): Promise<KeystoneResponse> {
    return this.authenticate(serviceAuthInputs(credentials));
  }

  /** POST /v3/auth/tokens with any password or application-credential inputs. */
  authenticate(inputs: KeystoneAuthInputs): Promise<KeystoneResponse> {
    return this.request('issue_token', 'POST', 'auth/tokens?nocatalog', {}, JSON.stringify(keystoneAuthBody(inputs)));
  }

  /**
   * GET /v3/auth/tokens: X-Auth-Token is the gateway's token, X-Subject-Token the user's. OpenStack-Identity-Access-Rules
   * says the gateway reads application credentials' access rules (it refuses every token that has some,
   * token-identity.ts): without it Keystone answers 404 for such a token, which the user would be told is expired or
   * revoked, and their exec plugin would get another one to meet the same answer.
   */
  validateToken(serviceToken: string, subjectToken: string): Promise<KeystoneResponse> {
    return this.request('validate_token', 'GET', 'auth/tokens?nocatalog', {
      'x-auth-token': serviceToken,
      'x-subject-token': subjectToken,
      'openstack-identity-access-rules': ACCESS_RULES_VERSION,
    });
  }

  /**
   * GET /v3/OS-REVOKE/events?since=...: the revocation events Keystone recorded after `since` (what keystonemiddleware
   * followed). Needs `identity:list_revoke_events`, which Keystone's default policy gives the service role.
   */
  revocationEvents(serviceToken: string, since: string): Promise<KeystoneResponse> {
    return this.request('revocation_events', 'GET', `OS-REVOKE/events?since=${encodeURIComponent(since)}`, { 'x-auth-token': serviceToken });
  }

  /**
   * GET /v3/projects/{id} with the token of a caller scoped to that project: Keystone's default policy
   * (identity:get_project, `project_id:%(target.project.id)s`) lets a project's own tokens read it, while the
   * gateway's service identity (the service role) may not read other projects.
   */
  project(token: string, projectId: string): Promise<KeystoneResponse> {
    return this.request('read_project', 'GET', `projects/${encodeURIComponent(projectId)}`, { 'x-auth-token': token });
  }

  /**
   * Any other call of the identity API (`path` relative to the v3 root) with `token`: the catalog, services and
   * endpoints, application credentials. For the commands of client/ (register, kubeconfig, docker-config).
   */
  call(method: string, path: string, token: string, body?: unknown): Promise<KeystoneResponse> {
    return this.request('identity_api', method, path, { 'x-auth-token': token }, body === undefined ? undefined : JSON.stringify(body));
  }

  /**
   * DELETE /v3/auth/tokens with the token as both X-Auth-Token and X-Subject-Token: a user revokes their own token
   * (`openstack token revoke`), so no service token is needed. 204 revoked; 404 (or 401) it was no longer valid.
   */
  revokeToken(token: string): Promise<KeystoneResponse> {
    return this.request('revoke_token', 'DELETE', 'auth/tokens', { 'x-auth-token': token, 'x-subject-token': token });
  }

  /** GET on the v3 root: Keystone is up and answering. */
  async ping(): Promise<boolean> {
    try {
      const res = await this.request('ping', 'GET', '', {});
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  }

  close(): void {
    void this.agent.destroy();
  }

  private async request(
    operation: KeystoneOperation,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<KeystoneResponse> {
    const metrics = this.options.metrics;
    const stopTimer = metrics?.keystoneLatency.startTimer({ operation });
    // When the call (or its second try) left for Keystone; undefined while it waits at the gate.
    let sentAt: number | undefined;
    const answeredSince = (t: number | undefined): boolean => t !== undefined && this.lastAnswerAt > t;
    try {
      const res = await this.gate
        .run(async () => {
          sentAt = performance.now();
          try {
            return await this.send(method, path, headers, body);
          } catch (err) {
            // Keystone answered other calls meanwhile: a GET (nothing changes at Keystone) is tried once more, on
            // another connection (the failed one is gone), rather than failing every request of this token.
            if (method !== 'GET' || !hasCode(err, 'keystone_unavailable') || !answeredSince(sentAt)) throw err;
            metrics?.keystoneRetries.inc({ operation });
            sentAt = performance.now();
            return await this.send(method, path, headers, body);
          }
        })
        .catch((err: unknown) => {
          // Unreachable or silent: those waiting would only fail after it, one timeout at a time. Not when Keystone
          // kept answering other calls: then only this call was unlucky, and those waiting have a good chance.
          if (hasCode(err, 'keystone_unavailable') && !answeredSince(sentAt)) this.gate.failWaiting(err);
          throw err;
        });
      metrics?.keystoneRequests.inc({ operation, outcome: String(res.status) });
      if (res.status >= 500) metrics?.keystoneErrors.inc({ operation });
      return res;
    } catch (err) {
      metrics?.keystoneRequests.inc({ operation, outcome: 'error' });
      metrics?.keystoneErrors.inc({ operation });
      throw err;
    } finally {
      stopTimer?.();
    }
  }

  private async send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<KeystoneResponse> {
    let res;
    try {
      res = await request(new URL(path, this.base), {
        method: method as 'GET' | 'POST',
        dispatcher: this.agent,
        // One deadline for the whole call, answer included, on a native timer: undici's own header and body timeouts
        // tick in half seconds.
        signal: this.options.deadline?.(this.options.timeoutMs) ?? AbortSignal.timeout(this.options.timeoutMs),
        headers: {
          accept: 'application/json',
          'user-agent': 'zun-gateway',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body } : {}),
      });
    } catch (err) {
      throw keystoneDown(unanswered(err, this.options.timeoutMs), err);
    }
    this.lastAnswerAt = performance.now();
    let parsed: unknown;
    try {
      const text = await res.body.text();
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch (err) {
      if (err instanceof SyntaxError) parsed = undefined;
      else throw keystoneDown(`reading Keystone's answer failed: ${unanswered(err, this.options.timeoutMs)}`, err);
    }
    const subject = res.headers['x-subject-token'];
    return { status: res.statusCode, subjectToken: typeof subject === 'string' ? subject : undefined, body: parsed };
  }
}

/** Why a call got no (whole) answer, in the words operators read in the log. */
function unanswered(err: unknown, timeoutMs: number): string {
  const code = systemCode(err);
  if ((err as Error).name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT') return `Keystone did not answer within ${timeoutMs} ms`;
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return `Keystone answer larger than ${MAX_KEYSTONE_BODY} bytes`;
  return `Keystone unreachable: ${code !== '' ? code : err instanceof Error ? err.message : String(err)}`;
}
