import { describeWho, inputError, resolveInputs, type Env, type OpenStackInputs } from '../config/openstack-inputs.js';
import { DEFAULT_SERVICE_TYPE, gatewayFromCatalog } from './catalog.js';
import { keystoneClient, userToken, type UserTokenOptions } from './exec-credential.js';
import { hasCode } from '../errors.js';
import { IdentityApi } from './keystone-api.js';

/** The user's OpenStack inputs and a way to call Keystone's identity API as them. */
export interface IdentitySession {
  readonly inputs: OpenStackInputs;
  /** Who, for messages: "user alice", "application credential ...", "OS_TOKEN". */
  readonly who: string;
  /**
   * Runs `fn` with the identity API as the user. The token comes from the credential plugin's cache; when Keystone
   * refuses it (revoked since it was cached), a new one is got once and `fn` runs again.
   */
  run<T>(fn: (api: IdentityApi) => Promise<T>): Promise<T>;
}

export function identitySession(env: Env, options: UserTokenOptions = {}): IdentitySession {
  const inputs = resolveInputs(env, options);
  if (inputs.authUrl === undefined) throw inputError('OS_TOKEN alone does not say where Keystone is: set OS_AUTH_URL too');
  const client = keystoneClient({ ...inputs, authUrl: inputs.authUrl });
  const who = describeWho(inputs);
  return {
    inputs,
    who,
    async run<T>(fn: (api: IdentityApi) => Promise<T>): Promise<T> {
      try {
        const first = await userToken(env, options);
        try {
          return await fn(new IdentityApi(client, first.token, who));
        } catch (err) {
          if (!hasCode(err, 'client_token_refused')) throw err;
          const again = await userToken(env, { ...options, refusedToken: first.token });
          if (again.token === first.token) throw err;
          return await fn(new IdentityApi(client, again.token, who));
        }
      } finally {
        client.close();
      }
    },
  };
}

/**
 * The gateway's URL from the user's Keystone catalog (its public endpoint, OS_REGION_NAME honoured), for commands
 * given no --server; a `client_input` error saying to pass --server or have the gateway registered when it is not there.
 */
export async function serverFromCatalog(env: Env, serviceType: string | undefined, options: UserTokenOptions = {}): Promise<string> {
  const session = identitySession(env, options);
  const type = serviceType ?? DEFAULT_SERVICE_TYPE;
  const found = gatewayFromCatalog(await session.run((api) => api.catalog()), { serviceType: type, region: session.inputs.regionName, who: session.who });
  if ('error' in found) throw inputError(found.error);
  if (!URL.canParse(found.url) || new URL(found.url).protocol !== 'https:') {
    throw inputError(`the Keystone catalog's '${type}' endpoint ${found.url} is not an https:// URL: ask the operator to register the gateway's https URL, or pass --server`);
  }
  return found.url;
}
