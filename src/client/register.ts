import { z } from 'zod';
import { inputError, type Env } from '../config/openstack-inputs.js';
import { DEFAULT_SERVICE_TYPE } from './catalog.js';
import { failureMessage, type CommandIo, type UserTokenOptions } from './exec-credential.js';
import { identitySession } from './identity-session.js';
import type { Endpoint, IdentityApi } from './keystone-api.js';

export interface RegisterCommandOptions {
  readonly url: string;
  readonly region?: string | undefined;
  readonly type?: string | undefined;
  readonly name?: string | undefined;
}

const DESCRIPTION = 'zun-gateway: kubectl and docker for OpenStack projects, authenticated by Keystone';

const commandOptions = z.object({
  url: z
    .string()
    .refine((s) => URL.canParse(s) && new URL(s).protocol === 'https:' && new URL(s).search === '' && new URL(s).hash === '', {
      message: '--url must be the https:// URL tenants reach the gateway at, such as https://gateway.example:8443 (kubectl sends credentials only over TLS)',
    }),
  // Keystone's service types: letters, digits and dashes (keystone/common/validation/parameter_types.py id_string).
  type: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, '--type must be letters, digits and dashes (at most 64)'),
  name: z.string().trim().min(1, '--name must not be empty').max(255),
  region: z.string().trim().min(1, '--region must not be empty').max(255).optional(),
});

const sameRegion = (e: Endpoint, region: string | undefined): boolean => (e.region_id ?? e.region ?? undefined) === region;

/**
 * The service of `type` (the first, when someone made several) with `name`, enabled; and exactly one public endpoint
 * in `region` with `url`. Returns what was done, one line each.
 */
export async function register(api: IdentityApi, o: { url: string; type: string; name: string; region: string | undefined }): Promise<string[]> {
  const done: string[] = [];
  const services = await api.services(o.type);
  let service = services[0];
  if (service === undefined) {
    service = await api.createService({ type: o.type, name: o.name, description: DESCRIPTION });
    done.push(`created the service '${o.name}' of type ${o.type} (${service.id})`);
  } else if (service.name !== o.name || service.enabled === false) {
    await api.updateService(service.id, { name: o.name, enabled: true });
    done.push(`updated the service ${service.id} of type ${o.type}: name '${o.name}', enabled`);
  } else done.push(`the service '${o.name}' of type ${o.type} (${service.id}) is there already`);
  for (const extra of services.slice(1)) {
    done.push(`warning: Keystone has another '${o.type}' service, ${extra.id} ('${extra.name ?? ''}'): its endpoints are in the catalog too; remove it with \`openstack service delete ${extra.id}\` unless it is meant`);
  }
  const where = o.region !== undefined ? ` in region ${o.region}` : ' (no region)';
  const existing = (await api.endpoints(service.id, 'public')).filter((e) => sameRegion(e, o.region));
  const [first, ...duplicates] = existing;
  if (first === undefined) {
    const made = await api.createEndpoint({ service_id: service.id, interface: 'public', url: o.url, ...(o.region !== undefined ? { region_id: o.region } : {}) });
    done.push(`created the public endpoint ${o.url}${where} (${made.id})`);
  } else if (first.url !== o.url || first.enabled === false) {
    await api.updateEndpoint(first.id, { url: o.url, enabled: true });
    done.push(`updated the public endpoint ${first.id}${where}: ${first.url} -> ${o.url}`);
  } else done.push(`the public endpoint ${o.url}${where} (${first.id}) is there already`);
  // One public endpoint per region: clients would pick any of several.
  for (const dup of duplicates) {
    await api.deleteEndpoint(dup.id);
    done.push(`deleted the duplicate public endpoint ${dup.id} (${dup.url})${where}`);
  }
  return done;
}

/**
 * `zun-gateway register`: an operator with admin credentials (OS_CLOUD or OS_*) puts the gateway in the Keystone
 * catalog. Running it again changes nothing, or updates the URL: one service, one public endpoint per region.
 */
export async function runRegister(opts: RegisterCommandOptions, env: Env, io: CommandIo, tokenOptions: UserTokenOptions = {}): Promise<number> {
  try {
    const checked = commandOptions.safeParse({ url: opts.url, type: opts.type ?? DEFAULT_SERVICE_TYPE, name: opts.name ?? DEFAULT_SERVICE_TYPE, region: opts.region });
    if (!checked.success) throw inputError(checked.error.issues[0]?.message ?? 'invalid options');
    const session = identitySession(env, tokenOptions);
    const region = checked.data.region ?? session.inputs.regionName;
    const url = checked.data.url.replace(/\/+$/, '');
    const done = await session.run((api) => register(api, { url, type: checked.data.type, name: checked.data.name, region }));
    for (const line of done) io.err(`zun-gateway register: ${line}\n`);
    const serviceType = checked.data.type === DEFAULT_SERVICE_TYPE ? '' : ` --service-type ${checked.data.type}`;
    io.err(
      `Tenants now find the gateway in their catalog${region !== undefined ? ` (with OS_REGION_NAME=${region} or none)` : ''}:\n` +
        `  zun-gateway kubeconfig${serviceType} --certificate-authority <the gateway's CA> --output ~/.kube/zun-gateway\n` +
        `  zun-gateway docker-config${serviceType} --certificate-authority <the gateway's CA> --output ~/.docker/zun-gateway\n`,
    );
    return 0;
  } catch (e) {
    io.err(`zun-gateway register: ${failureMessage(e)}\n`);
    return 1;
  }
}
