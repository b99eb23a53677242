import { GatewayError } from '../errors.js';

/**
 * Authentication failures, as GatewayErrors a COE writes in its own dialect (Kubernetes Status, Docker message):
 *  - credentials_invalid (400): credentials sent in a way we refuse to interpret (ambiguous or malformed);
 *  - unauthenticated (401): no token, or Keystone says the token is not valid: get a new one;
 *  - forbidden (403): the token is valid but cannot be used here (unscoped, domain/system scope, access rules);
 *  - keystone_unavailable (503): Keystone cannot answer now; never 401, so clients do not start re-authentication storms.
 */

/** How to renew a token, for each client: the end of every 401 about a token that is no longer good. */
export const RENEW_TOKEN =
  'get a new one: kubectl with the `zun-gateway credential` plugin gets one itself when the command is run again; otherwise `openstack token issue` (docker: put it in ~/.docker/config.json\'s HttpHeaders, or use an application credential there as Basic, which the gateway renews itself)';

export const unauthorized = (message: string): GatewayError => new GatewayError('unauthenticated', message);
export const forbidden = (message: string): GatewayError => new GatewayError('forbidden', message);
export const badCredentials = (message: string): GatewayError => new GatewayError('credentials_invalid', message);
export const keystoneUnavailable = (message: string): GatewayError => new GatewayError('keystone_unavailable', message);
