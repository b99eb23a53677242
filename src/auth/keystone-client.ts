import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { ServiceCredentials } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import { IDLE_CONNECTION_MS } from '../proxy/upstream.js';
import { keystoneAuthBody, serviceAuthInputs, type KeystoneAuthInputs } from './auth-body.js';
import { KeystoneGate } from './keystone-gate.js';

/** Keystone could not be asked, or answered in a way that tells nothing about the token: never the user's fault. */
export class KeystoneUnavailableError extends Error {
  override readonly name: string = 'KeystoneUnavailableError';
}

/**
 * Keystone answers, but refuses the gateway itself (its service credentials, or its right to validate tokens): the
 * operator's to fix, not the user's, and not a passing outage.
 */
export class GatewayRefusedError extends KeystoneUnavailableError {
  override readonly name = 'GatewayRefusedError';
}

/** Too many calls were waiting for Keystone: it is slow, not known to be down. */
export class KeystoneBusyError extends KeystoneUnavailableError {
  override readonly name = 'KeystoneBusyError';
}

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
}

/** What a Keystone call was for: the label of its metrics. */
type KeystoneOperation = 'issue_token' | 'validate_token' | 'ping' | 'identity_api';

const MAX_KEYSTONE_BODY = 4 * 1024 * 1024;

/** The access-rules version the gateway declares when validating (keystonemiddleware sends the same). */
const ACCESS_RULES_VERSION = '1.0';

const namedRef = z.object({ id: z.string(), name: z.string() });
const domainRef = z.object({ id: z.string(), name: z.string().optional() });

/** The parts of Keystone's token body (GET/POST /v3/auth/tokens) the gateway reads. */
export const tokenBodySchema = z.object({
  token: z.object({
    expires_at: z.string(),
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
  }),
});
export type TokenBody = z.infer<typeof tokenBodySchema>;

/** Only the HTTP conversation with Keystone; what the answers mean is decided by the callers. */
export class KeystoneClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
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
      (waited) => new KeystoneBusyError(`Keystone is busy: no call could be made within ${waited} ms`),
    );
    this.base = new URL(options.authUrl.endsWith('/') ? options.authUrl : `${options.authUrl}/`);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 64, timeout: IDLE_CONNECTION_MS, ...(options.ca ? { ca: options.ca } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 64, timeout: IDLE_CONNECTION_MS });
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
   * Any other call of the identity API (`path` relative to the v3 root) with `token`: the catalog, services and
   * endpoints, application credentials. For the commands of client/ (register, kubeconfig, docker-config).
   */
  call(method: string, path: string, token: string, body?: unknown): Promise<KeystoneResponse> {
    return this.request('identity_api', method, path, { 'x-auth-token': token }, body === undefined ? undefined : JSON.stringify(body));
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
    this.agent.destroy();
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
            if (method !== 'GET' || !(err instanceof KeystoneUnavailableError) || !answeredSince(sentAt)) throw err;
            metrics?.keystoneRetries.inc({ operation });
            sentAt = performance.now();
            return await this.send(method, path, headers, body);
          }
        })
        .catch((err: unknown) => {
          // Unreachable or silent: those waiting would only fail after it, one timeout at a time. Not when Keystone
          // kept answering other calls: then only this call was unlucky, and those waiting have a good chance.
          if (err instanceof KeystoneUnavailableError && !(err instanceof KeystoneBusyError) && !answeredSince(sentAt)) this.gate.failWaiting(err);
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

  private send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<KeystoneResponse> {
    const url = new URL(path, this.base);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            'user-agent': 'zun-gateway',
            ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
            ...headers,
          },
          timeout: this.options.timeoutMs,
        },
        (res) => {
          this.lastAnswerAt = performance.now();
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_KEYSTONE_BODY) {
              req.destroy(new KeystoneUnavailableError(`Keystone answer larger than ${MAX_KEYSTONE_BODY} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            const subject = res.headers['x-subject-token'];
            resolve({ status: res.statusCode ?? 0, subjectToken: typeof subject === 'string' ? subject : undefined, body: parsed });
          });
          res.on('error', (err) => reject(new KeystoneUnavailableError(`reading Keystone's answer failed: ${err.message}`)));
        },
      );
      req.on('timeout', () => req.destroy(new KeystoneUnavailableError(`Keystone did not answer within ${this.options.timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(err instanceof KeystoneUnavailableError ? err : new KeystoneUnavailableError(`Keystone unreachable: ${err.message}`)),
      );
      req.end(body);
    });
  }
}
