import type { CatalogEntry, Endpoint } from './keystone-api.js';

/** The catalog service type the gateway is registered under (`zun-gateway register --type`). */
export const DEFAULT_SERVICE_TYPE = 'zun-gateway';

const regionOf = (e: Endpoint): string | undefined => e.region_id ?? e.region ?? undefined;

/**
 * The gateway's URL from a token's catalog: the public endpoint of the service of `serviceType`, in `region`
 * (OS_REGION_NAME) when one is given, where an endpoint registered without a region serves every region. Otherwise
 * why not, saying what to do.
 */
export function gatewayFromCatalog(
  catalog: readonly CatalogEntry[],
  options: { serviceType: string; region?: string | undefined; who: string },
): { url: string } | { error: string } {
  const { serviceType, region } = options;
  const publicEndpoints = catalog.filter((s) => s.type === serviceType).flatMap((s) => s.endpoints.filter((e) => e.interface === 'public'));
  const inRegion = region === undefined ? publicEndpoints : publicEndpoints.filter((e) => regionOf(e) === region);
  const chosen = inRegion[0] ?? (region !== undefined ? publicEndpoints.find((e) => regionOf(e) === undefined) : undefined);
  if (chosen !== undefined) return { url: chosen.url };
  const elsewhere = [...new Set(publicEndpoints.map(regionOf).filter((r): r is string => r !== undefined))];
  const where = region !== undefined ? ` in region ${region}` : '';
  const others = elsewhere.length > 0 ? ` (it has one in ${elsewhere.join(', ')}: check OS_REGION_NAME)` : '';
  return {
    error:
      `no --server given, and the Keystone catalog of ${options.who} has no '${serviceType}' service with a public endpoint${where}${others}: ` +
      `pass --server https://<gateway>:8443, or ask the operator to run \`zun-gateway register --url https://<gateway>:8443\``,
  };
}
