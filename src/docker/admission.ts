import type { IncomingMessage } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { DockerConfig } from '../config/schema.js';
import { hasCode } from '../errors.js';
import { hasBody } from '../proxy/forward.js';
import { readBody } from '../proxy/read-body.js';
import type { Upstream } from '../proxy/upstream.js';
import { checkContainerCreate, checkContainerUpdate, checkEndpointSettings, checkExecCreate, checkNetworkCreate, checkVolumeCreate, type References } from './body-check.js';
import { bodyError, field, isObject, parseBody, setField, type JsonObject } from './json-body.js';
import { applyLimits } from './limits.js';
import { claimVolume, resolveOwned, stampOwner } from './ownership.js';
import { refused, type BodyCheck, type Matched } from './policy.js';
import { moveOffSharedBridge, pinNetworks, pinnedEndpoint, ProjectNetworks } from './project-network.js';
import { checkLoginServer } from './registries.js';

/**
 * Request bodies on their way to the engine: read (bounded), checked, stamped with the owner and rewritten as the
 * engine will see them (invariants.md 17, 18), or refused with the field and the docker option to drop.
 */
export class BodyAdmission {
  private readonly networks: ProjectNetworks;

  constructor(
    private readonly engine: Upstream,
    private readonly config: DockerConfig,
  ) {
    this.networks = new ProjectNetworks(engine);
  }

  /**
   * What goes to the engine as the body: the checked one, none, or (undefined) the client's own stream (a tar).
   * `object`: the engine id of the path's object, checked to be the caller's.
   */
  async body(req: IncomingMessage, matched: Matched, path: string, identity: Identity, object?: string): Promise<Buffer | undefined> {
    const kind = matched.endpoint.body;
    if (kind === undefined) return matched.endpoint.rawBody === true ? undefined : this.none(req, path);
    const joins = matched.endpoint.pattern.at(-1) === 'connect' ? object : undefined;
    return Buffer.from(JSON.stringify(await this.checked(req, kind, identity, joins)));
  }

  /**
   * An endpoint that takes no body gets none. Below API 1.24 the engine applied a HostConfig sent to `start`: whatever
   * the client sends is read (bounded), must be empty (`{}` and `null` count as empty), and is not forwarded.
   */
  async none(req: IncomingMessage, path: string): Promise<Buffer | undefined> {
    if (!hasBody(req)) return undefined;
    const text = (await this.read(req)).toString('utf8').trim();
    if (text === '' || text === '{}' || text === 'null') return Buffer.alloc(0);
    throw bodyError(`${req.method} ${path} takes no body through the gateway: container settings are given when it is created (docker create, docker run)`);
  }

  /** A body the adapter reads and checks (`kind`), as it will go to the engine; `joins`: the network a connect joins. */
  async checked(req: IncomingMessage, kind: BodyCheck, identity: Identity, joins?: string): Promise<JsonObject> {
    const body = parseBody(await this.read(req));
    const project = identity.project.id;
    switch (kind) {
      case 'exec-start':
        // Attached sessions are hijacked connections (upgrades); only a detached start comes as a plain request.
        if (field(body, 'Detach') !== true) throw refused('exec start must use a hijacked connection (Upgrade: tcp) unless it is detached (docker exec -d)');
        break;
      case 'container-create': {
        const refs = checkContainerCreate(body);
        stampOwner(body, project);
        const networks = await this.verifyReferences(refs, project);
        const projectNetwork = this.config.projectNetworks ? await moveOffSharedBridge(body, () => this.networks.idFor(project)) : undefined;
        if (projectNetwork !== undefined) networks.set(projectNetwork, projectNetwork);
        pinNetworks(body, networks);
        let hostConfig = field(body, 'HostConfig');
        if (!isObject(hostConfig ?? null)) {
          hostConfig = {};
          setField(body, 'HostConfig', hostConfig);
        }
        applyLimits(hostConfig as JsonObject, this.config.limits, 'create');
        break;
      }
      case 'container-update':
        checkContainerUpdate(body);
        applyLimits(body, this.config.limits, 'update');
        break;
      case 'exec-create':
        checkExecCreate(body);
        break;
      case 'volume-create':
        checkVolumeCreate(body);
        stampOwner(body, project);
        break;
      case 'network-create':
        checkNetworkCreate(body);
        stampOwner(body, project);
        break;
      case 'network-connect': {
        const container = field(body, 'Container');
        if (typeof container !== 'string') throw bodyError('Container must name a container');
        const endpoint = field(body, 'EndpointConfig');
        checkEndpointSettings(endpoint, 'EndpointConfig');
        setField(body, 'Container', await resolveOwned(this.engine, 'container', container, project));
        // Pinned as a create's networks are (pinNetworks): a stopped container keeps the network by name until it starts.
        if (joins !== undefined) setField(body, 'EndpointConfig', pinnedEndpoint(endpoint, joins));
        break;
      }
      case 'registry-login':
        checkLoginServer(field(body, 'serveraddress'), this.config.allowedRegistries);
        break;
    }
    return body;
  }

  /**
   * Every container and network a create names is the project's; every named volume is, or becomes, the project's.
   * Returns the engine id of each network, by the name the create gave it.
   */
  private async verifyReferences(refs: References, project: string): Promise<Map<string, string>> {
    const owned = (kind: 'container' | 'network', ref: References['containers'][number], hint: string): Promise<string> =>
      resolveOwned(this.engine, kind, ref.name, project).catch((err: unknown) => {
        throw hasCode(err, 'not_found') ? bodyError(`${ref.field} (${ref.option}) names a ${kind} that is not yours${hint}`) : err;
      });
    for (const ref of refs.containers) await owned('container', ref, '');
    const networks = new Map<string, string>();
    for (const ref of refs.networks) networks.set(ref.name, await owned('network', ref, ': make your own with docker network create'));
    for (const ref of refs.volumes) await claimVolume(this.engine, ref.name, project, ref.labels);
    return networks;
  }

  private read(req: IncomingMessage): Promise<Buffer> {
    const declared = req.headers['content-length'];
    return readBody(req, this.config.maxBodyBytes, declared !== undefined ? Number(declared) : undefined);
  }
}

/** The body of a hijacked request: exec start's small JSON object (checked and re-serialized), nothing for attach. */
export function upgradeBody(matched: Matched, raw: Buffer, what: string): Buffer | undefined {
  if (raw.length === 0) return undefined;
  if (matched.endpoint.body === 'exec-start') return Buffer.from(JSON.stringify(parseBody(raw)));
  throw bodyError(`${what} takes no body`);
}
