import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { bodyError, field, isObject, setField, type Json, type JsonObject } from './json-body.js';
import { LABEL_PREFIX, OWNER_LABEL, engineFailed } from './ownership.js';
import { ProjectLease } from './project-lease.js';

/** Marks the network the gateway made as a project's own default network. */
export const DEFAULT_NETWORK_LABEL = `${LABEL_PREFIX}default-network`;

/**
 * The projects' default networks, made on first use: containers that name no network join their project's instead of
 * the engine's default bridge, which every tenant's containers share. Found by their labels (which only the gateway
 * can set), not by name: network names are not unique, and another project could take any name first.
 */
export class ProjectNetworks {
  /** One lookup (and at most one create) per project at a time in this process. */
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly engine: Upstream,
    private readonly lease: ProjectLease = new ProjectLease(engine),
  ) {}

  /** The id of the project's network, made when it has none. */
  idFor(projectId: string): Promise<string> {
    let pending = this.inflight.get(projectId);
    if (pending === undefined) {
      pending = this.find(projectId).finally(() => this.inflight.delete(projectId));
      this.inflight.set(projectId, pending);
    }
    return pending;
  }

  private async find(projectId: string): Promise<string> {
    const existing = await this.listed(projectId);
    if (existing !== undefined) return existing;
    // Made under the project's lease in the engine, which every replica takes: dockerd checks CheckDuplicate before a
    // create it takes ~100 ms over and lists a network only once made, so two replicas' creates at once made two
    // networks and split the project's containers between them (seen on 20.10 in every e2e run).
    const release = await this.lease.acquire(projectId);
    try {
      return (await this.listed(projectId)) ?? (await this.create(projectId));
    } finally {
      await release().catch(() => undefined);
    }
  }

  private async create(projectId: string): Promise<string> {
    // CheckDuplicate still: a replica of a version without the lease may be making it (each one holds one of the
    // engine's address pools until removed).
    const spec = { Name: `zun-${projectId}`, Driver: 'bridge', Labels: { [OWNER_LABEL]: projectId, [DEFAULT_NETWORK_LABEL]: 'true' } };
    let created = await engineJson(this.engine, 'POST', '/networks/create', { ...spec, CheckDuplicate: true });
    if (created.status === 409) {
      const theirs = await this.listed(projectId);
      if (theirs !== undefined) return theirs;
      // The name is someone else's network (not labelled as this project's): names need not be unique.
      created = await engineJson(this.engine, 'POST', '/networks/create', spec);
    }
    const id = field(created.body as Json, 'Id');
    if (created.status === 201 && typeof id === 'string') return id;
    // Typically the engine's address pools are used up (about 30 networks by default): the operator's to fix. Always
    // 503: the docker CLI reads a 404 from a create as a missing image and goes pulling it.
    const said = field(created.body as Json, 'message');
    throw engineFailed(
      503,
      `the Docker engine could not create the project's network (HTTP ${created.status}${typeof said === 'string' ? `: ${said}` : ''}); ask the operator, or name a network of yours with --network`,
    );
  }

  /** The project's network, if there is one: the oldest, should there be two (made by a version without the lease). */
  private async listed(projectId: string): Promise<string | undefined> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${OWNER_LABEL}=${projectId}`, `${DEFAULT_NETWORK_LABEL}=true`] }));
    const listed = await engineJson(this.engine, 'GET', `/networks?filters=${filters}`);
    if (listed.status !== 200 || !Array.isArray(listed.body)) throw engineFailed(listed.status, `the Docker engine answered ${listed.status} while looking for the project's network`);
    return (listed.body as Json[])
      .map((n) => ({ id: field(n, 'Id'), created: String(field(n, 'Created') ?? '') }))
      .filter((n): n is { id: string; created: string } => typeof n.id === 'string')
      // By instant (Created is RFC 3339 with a trimmed fraction: as text "….12Z" sorts after "….123Z"), then id.
      .sort((a, b) => (Date.parse(a.created) || 0) - (Date.parse(b.created) || 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0]?.id;
  }
}

/** How a create names the engine's shared bridge (matched exactly, as the engine does). */
const SHARED_BRIDGE = ['', 'default', 'bridge'];

/**
 * Whether the create puts the container on the engine's default bridge (no network named, `default` or `bridge`),
 * and if so, moves it to `network` (the project's own): NetworkMode and an endpoint configured for the default
 * bridge (aliases, addresses) are re-pointed at it; resolves with its id. An endpoint for the bridge beside another
 * NetworkMode (`none`, or a network of the project's) is refused: the engine would join the shared bridge as well
 * (review 2026-12-07).
 */
export function moveOffSharedBridge(body: JsonObject, network: () => Promise<string>): Promise<string> | undefined {
  const hostConfig = field(body, 'HostConfig');
  const mode = field(hostConfig, 'NetworkMode');
  const endpoints = field(field(body, 'NetworkingConfig'), 'EndpointsConfig');
  const config = isObject(endpoints ?? null) ? (endpoints as JsonObject) : {};
  if (mode !== undefined && mode !== null && !(typeof mode === 'string' && SHARED_BRIDGE.includes(mode))) {
    const bridge = Object.keys(config).find((key) => SHARED_BRIDGE.includes(key));
    if (bridge !== undefined) {
      throw bodyError(`NetworkingConfig.EndpointsConfig.${bridge} beside NetworkMode ${String(mode)}: the engine's shared bridge is not served (docker.projectNetworks); your containers join your project's network, or one of your own`);
    }
    return undefined;
  }
  return network().then((id) => {
    if (isObject(hostConfig ?? null)) setField(hostConfig as JsonObject, 'NetworkMode', id);
    else setField(body, 'HostConfig', { NetworkMode: id });
    for (const key of Object.keys(config)) {
      if (!SHARED_BRIDGE.includes(key)) continue;
      config[id] = config[key] as Json;
      delete config[key];
    }
    return id;
  });
}

/**
 * Pins each user-defined network of a create to the engine id checked to be the project's: NetworkMode and the
 * EndpointsConfig keys become that id, and each endpoint carries it as its NetworkID. Otherwise the engine keeps a
 * never-started container's networks by name and looks the name up at the first start: a network removed and made
 * again under that name by another project was joined (checked on dockerd 20.10). Pinned, such a start fails. After
 * a first start the engine pins the id itself.
 */
export function pinNetworks(body: JsonObject, checked: ReadonlyMap<string, string>): void {
  if (checked.size === 0) return;
  const hostConfig = field(body, 'HostConfig');
  const mode = field(hostConfig, 'NetworkMode');
  const modeId = typeof mode === 'string' ? checked.get(mode) : undefined;
  if (modeId !== undefined) setField(hostConfig as JsonObject, 'NetworkMode', modeId);
  const endpoints = field(field(body, 'NetworkingConfig'), 'EndpointsConfig');
  const pinned: JsonObject = {};
  for (const [key, settings] of Object.entries(isObject(endpoints ?? null) ? (endpoints as JsonObject) : {})) {
    const id = checked.get(key);
    if (id === undefined) {
      pinned[key] = settings;
      continue;
    }
    pinned[id] = pinnedEndpoint(settings, id);
  }
  if (modeId !== undefined && pinned[modeId] === undefined) pinned[modeId] = { NetworkID: modeId };
  let networking = field(body, 'NetworkingConfig');
  if (!isObject(networking ?? null)) {
    networking = {};
    setField(body, 'NetworkingConfig', networking);
  }
  setField(networking as JsonObject, 'EndpointsConfig', pinned);
}

/** Endpoint settings (a create's or a connect's) as sent, with NetworkID set to the network's checked id. */
export function pinnedEndpoint(settings: Json | undefined, id: string): JsonObject {
  const copy: JsonObject = isObject(settings ?? null) ? { ...(settings as JsonObject) } : {};
  setField(copy, 'NetworkID', id);
  return copy;
}
