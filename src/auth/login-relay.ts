import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import type { KeystoneAuthInputs } from './auth-body.js';
import type { Authenticator } from './authenticator.js';
import { GatewayError, hasCode } from '../errors.js';
import { badCredentials, forbidden, keystoneUnavailable } from './errors.js';
import { isProjectScoped, type Identity } from './identity.js';
import { tokenBodySchema, type KeystoneClient } from './keystone-client.js';
import type { LoginThrottle } from './login-throttle.js';
import { identityFromToken } from './token-identity.js';

/** Keystone's own limits: names and ids of 255 characters, passwords of 4096 (max_password_length). */
const name = (label: string) => z.string({ error: `${label} is required` }).trim().min(1, `${label} is required`).max(255, `${label} is longer than Keystone allows`);
const secret = (label: string) => z.string({ error: `${label} is required` }).min(1, `${label} is required`).max(4096, `${label} is longer than Keystone allows`);

/** What the sign-in form sends: a password for a project, or an application credential (which carries its project). */
export const signInFormSchema = z.discriminatedUnion(
  'method',
  [
    z.strictObject({
      method: z.literal('password'),
      username: name('User name'),
      password: secret('Password'),
      project: name('Project'),
      domain: name('Domain').default('Default'),
    }),
    z.strictObject({
      method: z.literal('application_credential'),
      id: name('Application credential ID'),
      secret: secret('Secret'),
    }),
  ],
  { error: 'method must be "password" or "application_credential"' },
);
export type SignInForm = z.infer<typeof signInFormSchema>;

export interface SignedIn {
  /** The Keystone token: handed to the browser once, never logged or kept by the gateway. */
  readonly token: string;
  readonly identity: Identity;
}

export interface LoginRelayOptions {
  readonly keystone: KeystoneClient;
  readonly throttle: LoginThrottle;
  /** Told of a revoked token, so this replica stops trusting it at once. */
  readonly authenticator: Pick<Authenticator, 'forget'>;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** What Keystone said in its error body (`{"error": {"message": ...}}`), on one line, bounded. */
function keystoneMessage(body: unknown): string | undefined {
  const message = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof message === 'string' && message.trim() !== '' ? message.replace(/\s+/g, ' ').trim().slice(0, 300) : undefined;
}

function refusal(form: SignInForm, status: number, body: unknown): GatewayError {
  const check =
    form.method === 'password'
      ? 'check the user name, password, project and domain (and that the user has a role on that project)'
      : 'check the application credential ID and secret (and that the credential has not expired or been deleted)';
  const said = keystoneMessage(body);
  return new GatewayError('unauthenticated', `Keystone refused the sign-in (HTTP ${status}${said !== undefined ? `: ${said}` : ''}): ${check}`);
}

function authInputs(form: SignInForm): KeystoneAuthInputs {
  return form.method === 'password'
    ? {
        method: 'password',
        username: form.username,
        userDomainName: form.domain,
        password: form.password,
        projectName: form.project,
        projectDomainName: form.domain,
      }
    : { method: 'application_credential', id: form.id, secret: form.secret };
}

/**
 * The sign-in page's relay to Keystone: POST /v3/auth/tokens with what the user typed, the token handed back once, and
 * DELETE /v3/auth/tokens at sign-out. The gateway keeps nothing of it (no password, no token, no session): every
 * later request of the page carries the token like any other client's. Failed sign-ins are limited per source
 * address and per user name before Keystone is asked.
 */
export class LoginRelay {
  private readonly now: () => number;

  constructor(private readonly options: LoginRelayOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The form as sent (any JSON), checked; 400 naming the first field that is wrong. */
  static parseForm(body: unknown): SignInForm {
    const parsed = signInFormSchema.safeParse(body);
    if (!parsed.success) throw badCredentials(parsed.error.issues[0]?.message ?? 'the sign-in form is not readable');
    return parsed.data;
  }

  async signIn(form: SignInForm, address: string): Promise<SignedIn> {
    const { keystone, throttle, logger } = this.options;
    const who = form.method === 'password' ? { user: form.username, domain: form.domain } : { applicationCredentialId: form.id };
    // Keystone matches names case-insensitively on most databases: so does the count.
    const userKey = form.method === 'password' ? `user:${form.domain.toLowerCase()}/${form.username.toLowerCase()}` : `appcred:${form.id}`;
    let attempt;
    try {
      attempt = throttle.begin(address, userKey);
    } catch (err) {
      logger.warn({ ...who, client: address }, 'sign-in refused: too many failed sign-ins');
      throw err;
    }
    let res;
    try {
      res = await keystone.authenticate(authInputs(form));
    } catch (err) {
      attempt.inconclusive();
      if (hasCode(err, 'keystone_unavailable', 'keystone_busy')) {
        logger.warn({ ...who, client: address, err: err.message }, 'sign-in failed: Keystone unavailable');
        throw keystoneUnavailable('Keystone cannot be reached right now, so nobody can sign in: try again in a minute');
      }
      throw err;
    }
    if (res.status >= 500 || res.status === 429) {
      attempt.inconclusive();
      logger.warn({ ...who, client: address, status: res.status }, 'sign-in failed: Keystone failed');
      throw new GatewayError('keystone_failed', `Keystone failed to answer the sign-in (HTTP ${res.status}): try again in a minute`);
    }
    if (res.status !== 201) {
      logger.info({ ...who, client: address, status: res.status }, 'sign-in refused by Keystone');
      throw refusal(form, res.status, res.body);
    }
    const token = res.subjectToken;
    if (token === undefined) {
      attempt.inconclusive();
      throw new GatewayError('keystone_failed', 'Keystone accepted the sign-in but sent no token (X-Subject-Token): tell the operator');
    }
    let identity;
    try {
      const parsed = tokenBodySchema.safeParse(res.body);
      if (!parsed.success) throw new GatewayError('keystone_failed', 'Keystone answered the sign-in with a token the gateway cannot read');
      identity = identityFromToken(parsed.data, this.now());
      if (!isProjectScoped(identity)) throw forbidden('Keystone gave a token without a project: sign in with a project');
    } catch (err) {
      // The credentials were right, but the token is of no use here (access rules, no project): nobody should hold it.
      attempt.inconclusive();
      await this.revokeQuietly(token);
      logger.info({ ...who, client: address, err: (err as Error).message }, 'sign-in refused: token not usable here');
      throw err;
    }
    attempt.succeeded();
    logger.info({ userId: identity.user.id, user: identity.user.name, projectId: identity.project.id, client: address }, 'signed in on the page');
    return { token, identity };
  }

  /** Revokes the token at Keystone (a user may revoke their own). A token Keystone no longer knows is signed out too. */
  async signOut(token: string): Promise<void> {
    this.options.authenticator.forget(token);
    let res;
    try {
      res = await this.options.keystone.revokeToken(token);
    } catch (err) {
      if (hasCode(err, 'keystone_unavailable', 'keystone_busy')) {
        throw keystoneUnavailable('Keystone cannot be reached, so the token was not revoked: it stays valid until it expires; try signing out again in a minute');
      }
      throw err;
    }
    if (res.status === 204 || res.status === 404 || res.status === 401) return;
    throw new GatewayError('keystone_failed', `Keystone did not revoke the token (HTTP ${res.status}): it stays valid until it expires; try signing out again`);
  }

  private async revokeQuietly(token: string): Promise<void> {
    try {
      await this.options.keystone.revokeToken(token);
    } catch {
      // Best effort: the token could be used nowhere through this gateway anyway.
    }
  }
}
