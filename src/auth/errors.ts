/**
 * Authentication failures as values. A COE route turns them into its own dialect (Kubernetes Status, Docker message).
 *  - 400: the request carries credentials in a way we refuse to interpret (ambiguous or malformed).
 *  - 401: no token, or Keystone says the token is not valid: get a new one.
 *  - 403: the token is valid but cannot be used here (unscoped, domain/system scope, restricted credential).
 *  - 503: Keystone cannot answer now; never 401, so clients do not start re-authentication storms.
 */
export type AuthFailureReason = 'BadRequest' | 'Unauthorized' | 'Forbidden' | 'ServiceUnavailable';

const STATUS: Record<AuthFailureReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  ServiceUnavailable: 503,
};

export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly status: number;
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
  ) {
    super(message);
    this.status = STATUS[reason];
  }
}

/** How to renew a token, for each client: the end of every 401 about a token that is no longer good. */
export const RENEW_TOKEN =
  'get a new one: kubectl with the `zun-gateway credential` plugin gets one itself when the command is run again; otherwise `openstack token issue` (docker: put it in ~/.docker/config.json\'s HttpHeaders, or use an application credential there as Basic, which the gateway renews itself)';

export const unauthorized = (message: string): AuthError => new AuthError('Unauthorized', message);
export const forbidden = (message: string): AuthError => new AuthError('Forbidden', message);
export const badCredentials = (message: string): AuthError => new AuthError('BadRequest', message);
export const keystoneUnavailable = (message: string): AuthError => new AuthError('ServiceUnavailable', message);
