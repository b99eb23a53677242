import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { field, isObject, setField, type Json, type JsonObject } from './json-body.js';
import { LABEL_PREFIX, OWNER_LABEL, engineFailed } from './ownership.js';

/** Marks the network the gateway made as a project's own default network. */
export const DEFAULT_NETWORK_LABEL = `${LABEL_PREFIX}default-network`;

/**
 * The project's default network, made on first use: containers that name no network join it instead of the engine's
 * default bridge, which every tenant's containers share. Found by its labels (which only the gateway can set), not by
 * name: network names are not unique, and another project could take any name first.
 */
export async function projectNetwork(engine: Upstream, projectId: string): Promise<string> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${OWNER_LABEL}=${projectId}`, `${DEFAULT_NETWORK_LABEL}=true`] }));
  const listed = await engineJson(engine, 'GET', `/networks?filters=${filters}`);
  if (listed.status !== 200 || !Array.isArray(listed.body)) throw engineFailed(listed.status, `the Docker engine answered ${listed.status} while looking for the project's network`);
  // Two creates at once can each make one: the oldest is the one.
  const oldest = (listed.body as Json[])
    .map((n) => ({ id: field(n, 'Id'), created: String(field(n, 'Created') ?? '') }))
    .filter((n): n is { id: string; created: string } => typeof n.id === 'string')
    .sort((a, b) => a.created.localeCompare(b.created))[0];
  if (oldest !== undefined) return oldest.id;
  const created = await engineJson(engine, 'POST', '/networks/create', {
    Name: `zun-${projectId}`,
    Driver: 'bridge',
    Labels: { [OWNER_LABEL]: projectId, [DEFAULT_NETWORK_LABEL]: 'true' },
  });
  const id = field(created.body as Json, 'Id');
  if (created.status !== 201 || typeof id !== 'string') {
    // Typically the engine's address pools are used up (about 30 networks by default): the operator's to fix.
    const said = field(created.body as Json, 'message');
    throw engineFailed(
      created.status >= 400 ? created.status : 502,
      `the Docker engine could not create the project's network (HTTP ${created.status}${typeof said === 'string' ? `: ${said}` : ''}); ask the operator, or name a network of yours with --network`,
    );
  }
  return id;
}

/**
 * Whether the create puts the container on the engine's default bridge (no network named, `default` or `bridge`),
 * and if so, moves it to `network` (the project's own): NetworkMode and an endpoint configured for the default
 * bridge (aliases, addresses) are re-pointed at it.
 */
export function moveOffSharedBridge(body: JsonObject, network: () => Promise<string>): Promise<void> | undefined {
  const hostConfig = field(body, 'HostConfig');
  const mode = field(hostConfig, 'NetworkMode');
  const lower = typeof mode === 'string' ? mode.toLowerCase() : '';
  if (mode !== undefined && mode !== null && !['', 'default', 'bridge'].includes(lower)) return undefined;
  return network().then((id) => {
    if (isObject(hostConfig ?? null)) setField(hostConfig as JsonObject, 'NetworkMode', id);
    else setField(body, 'HostConfig', { NetworkMode: id });
    const endpoints = field(field(body, 'NetworkingConfig'), 'EndpointsConfig');
    if (!isObject(endpoints ?? null)) return;
    const config = endpoints as JsonObject;
    for (const key of Object.keys(config)) {
      if (!['default', 'bridge'].includes(key.toLowerCase())) continue;
      config[id] = config[key] as Json;
      delete config[key];
    }
  });
}
