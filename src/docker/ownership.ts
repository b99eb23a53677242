import { GatewayError } from '../errors.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { bodyError, field, isObject, setField, type Json, type JsonObject } from './json-body.js';
import type { ObjectKind } from './policy.js';

/** Labels in this prefix are the gateway's: clients can never set them, so they cannot claim another's objects. */
export const LABEL_PREFIX = 'org.openstack.zun-gateway.';
export const OWNER_LABEL = `${LABEL_PREFIX}project-id`;
/**
 * Volume names in this prefix are the gateway's own (project leases, image pull records): no tenant may create or
 * mount one, whether or not it exists, so an answer never tells which records the engine holds.
 */
export const GATEWAY_VOLUME_PREFIX = 'zun-gateway-';

/** A tenant's volume name in the gateway's reserved prefix is refused: a squatted lease would stop a project. */
export function checkVolumeName(name: string, where: string): void {
  if (name.toLowerCase().startsWith(GATEWAY_VOLUME_PREFIX)) {
    throw new GatewayError('body_invalid', `${where}: volume names starting with ${GATEWAY_VOLUME_PREFIX} are reserved for the gateway; choose another name`);
  }
}

/** What the engine says about a missing object, so another project's object looks exactly missing. */
function notFoundMessage(kind: ObjectKind, ref: string): string {
  switch (kind) {
    case 'container':
      return `No such container: ${ref}`;
    case 'exec':
      return `No such exec instance: ${ref}`;
    case 'volume':
      return `get ${ref}: no such volume`;
    case 'network':
      return `network ${ref} not found`;
  }
}


function labelsOf(answer: unknown, kind: ObjectKind): Json | undefined {
  if (kind === 'container') return field(field(answer as Json, 'Config'), 'Labels');
  return field(answer as Json, 'Labels');
}

/** Whether the engine's answer for an object carries the project's owner label. */
function ownedBy(answer: unknown, kind: ObjectKind, projectId: string): boolean {
  const labels = labelsOf(answer, kind);
  return isObject(labels ?? null) && (labels as JsonObject)[OWNER_LABEL] === projectId;
}

/**
 * Resolves a container (id, id prefix or name), exec instance, volume or network to its engine id when it belongs
 * to the project; otherwise NotFoundError with the engine's own "missing" message.
 */
export async function resolveOwned(engine: Upstream, kind: ObjectKind, ref: string, projectId: string): Promise<string> {
  const missing = (): GatewayError => new GatewayError('not_found', notFoundMessage(kind, ref));
  const path = {
    container: `/containers/${encodeURIComponent(ref)}/json`,
    exec: `/exec/${encodeURIComponent(ref)}/json`,
    volume: `/volumes/${encodeURIComponent(ref)}`,
    network: `/networks/${encodeURIComponent(ref)}`,
  }[kind];
  const answer = await engineJson(engine, 'GET', path);
  if (answer.status === 404) throw missing();
  if (answer.status !== 200) throw engineFailed(answer.status, `the Docker engine answered ${answer.status} while checking ${kind} ${ref}`);
  if (kind === 'exec') {
    const container = field(answer.body as Json, 'ContainerID');
    if (typeof container !== 'string') throw missing();
    await resolveOwned(engine, 'container', container, projectId).catch(() => {
      throw missing();
    });
    return String(field(answer.body as Json, 'ID') ?? ref);
  }
  if (!ownedBy(answer.body, kind, projectId)) throw missing();
  const id = kind === 'volume' ? field(answer.body as Json, 'Name') : field(answer.body as Json, 'Id');
  return typeof id === 'string' ? id : ref;
}

/** The engine's answer to a volume create, once it is known to be the project's volume. */
export interface CreatedVolume {
  readonly status: number;
  readonly body: unknown;
}

function nameTaken(name: string): GatewayError {
  return new GatewayError('conflict', `the volume name ${name} is taken on this engine (volume names are engine-wide); choose another name`);
}

/**
 * Creates a volume for the project from a body already stamped with its owner. The engine answers a create for a
 * name that exists with the existing volume, whoever owns it: that answer is never relayed, it is a conflict.
 */
export async function createOwnedVolume(engine: Upstream, body: JsonObject, projectId: string): Promise<CreatedVolume> {
  const name = field(body, 'Name');
  if (typeof name === 'string') checkVolumeName(name, 'docker volume create');
  const answer = await engineJson(engine, 'POST', '/volumes/create', body);
  if (answer.status === 201 && !ownedBy(answer.body, 'volume', projectId)) throw nameTaken(String(field(body, 'Name') ?? ''));
  return answer;
}

/**
 * A named volume a container create mounts: the project's own, or created now as the project's. Left to the engine,
 * a missing one would be created without an owner, and an existing one would be mounted whoever owns it.
 */
export async function claimVolume(engine: Upstream, name: string, projectId: string, labels: JsonObject | undefined): Promise<void> {
  checkVolumeName(name, 'the volume to mount');
  const existing = await engineJson(engine, 'GET', `/volumes/${encodeURIComponent(name)}`);
  if (existing.status === 200) {
    if (!ownedBy(existing.body, 'volume', projectId)) throw nameTaken(name);
    return;
  }
  if (existing.status !== 404) throw engineFailed(existing.status, `the Docker engine answered ${existing.status} while checking volume ${name}`);
  const created = await createOwnedVolume(engine, { Name: name, Labels: { ...(labels ?? {}), [OWNER_LABEL]: projectId } }, projectId);
  if (created.status !== 201) throw engineFailed(created.status, `the Docker engine answered ${created.status} while creating volume ${name}`);
}

/**
 * A container name the project may take (create `?name=`, rename `?name=`). Names are engine-wide: the engine's own
 * conflict answer would show the id of another project's container, so a name held by another project is answered
 * here, without it. (A lookup by name also matches id prefixes; only an exact name counts.)
 */
export async function checkContainerName(engine: Upstream, name: string, projectId: string): Promise<void> {
  const bare = name.replace(/^\//, '');
  const answer = await engineJson(engine, 'GET', `/containers/${encodeURIComponent(bare)}/json`);
  if (answer.status !== 200 || field(answer.body as Json, 'Name') !== `/${bare}`) return;
  if (ownedBy(answer.body, 'container', projectId)) return;
  throw new GatewayError('conflict', `Conflict. The container name "/${bare}" is already in use on this engine (container names are engine-wide); choose another name`);
}

/** The engine failed one of the adapter's own calls (its status, or 502). */
export function engineFailed(status: number, message: string): GatewayError {
  return new GatewayError('engine_failed', message, { status: status >= 400 && status <= 599 ? status : 502 });
}

/** Labels in the gateway's prefix, which nobody else may set. */
export function refuseReservedLabels(labels: Json | undefined, where: string): void {
  if (labels === undefined || labels === null) return;
  if (!isObject(labels)) throw bodyError(`${where} must be an object`);
  for (const key of Object.keys(labels)) {
    if (key.toLowerCase().startsWith(LABEL_PREFIX)) throw bodyError(`label ${key} in ${where} is reserved for the gateway (prefix ${LABEL_PREFIX})`);
  }
}

/** Refuses client labels in the reserved prefix, then stamps the owner label (the body's Labels). */
export function stampOwner(body: JsonObject, projectId: string): void {
  const labels = field(body, 'Labels');
  refuseReservedLabels(labels, 'Labels');
  setField(body, 'Labels', { ...((labels as JsonObject | null | undefined) ?? {}), [OWNER_LABEL]: projectId });
}

/** `filters` with the owner label added: lists and events show the project's objects only. */
export function ownerFilters(raw: string | null, projectId: string): string {
  let filters: Record<string, unknown> = {};
  if (raw !== null && raw !== '') {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      filters = parsed as Record<string, unknown>;
    } catch {
      throw bodyError('the filters parameter is not a JSON object');
    }
  }
  const label = filters.label;
  const owner = `${OWNER_LABEL}=${projectId}`;
  // Docker reads {"label": {"k=v": true}} and the legacy {"label": ["k=v"]}, but not both shapes in one object
  // (`docker ps --filter name=x` sends the first; adding a list beside it made the engine refuse the whole query).
  const legacy = Object.values(filters).some((v) => Array.isArray(v));
  if (label === undefined) filters.label = legacy ? [owner] : { [owner]: true };
  else if (Array.isArray(label)) filters.label = [...label.map(String), owner];
  else if (typeof label === 'object' && label !== null) filters.label = { ...(label as Record<string, boolean>), [owner]: true };
  else throw bodyError('the label filter must be a list');
  return JSON.stringify(filters);
}

/** The engine's `filters` for the project's own objects (a container count, `docker info`). */
export function ownedFilter(projectId: string): string {
  return encodeURIComponent(JSON.stringify({ label: [`${OWNER_LABEL}=${projectId}`] }));
}
