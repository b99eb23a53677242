import type { DockerLimits } from '../config/schema.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { BodyError, field, isObject, setField, type Json, type JsonObject } from './json-body.js';
import type { ObjectKind } from './policy.js';

/** Labels in this prefix are the gateway's: clients can never set them, so they cannot claim another's objects. */
export const LABEL_PREFIX = 'org.openstack.zun-gateway.';
export const OWNER_LABEL = `${LABEL_PREFIX}project-id`;

/** What the engine says about a missing object, so another project's object looks exactly missing. */
export function notFoundMessage(kind: ObjectKind, ref: string): string {
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

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly status = 404;
}

function labelsOf(answer: unknown, kind: ObjectKind): Json | undefined {
  if (kind === 'container') return field(field(answer as Json, 'Config'), 'Labels');
  return field(answer as Json, 'Labels');
}

/**
 * Resolves a container (id, id prefix or name), exec instance, volume or network to its engine id when it belongs
 * to the project; otherwise NotFoundError with the engine's own "missing" message.
 */
export async function resolveOwned(engine: Upstream, kind: ObjectKind, ref: string, projectId: string): Promise<string> {
  const missing = (): NotFoundError => new NotFoundError(notFoundMessage(kind, ref));
  const path = {
    container: `/containers/${encodeURIComponent(ref)}/json`,
    exec: `/exec/${encodeURIComponent(ref)}/json`,
    volume: `/volumes/${encodeURIComponent(ref)}`,
    network: `/networks/${encodeURIComponent(ref)}`,
  }[kind];
  const answer = await engineJson(engine, 'GET', path);
  if (answer.status === 404) throw missing();
  if (answer.status !== 200) throw new EngineError(answer.status, `the Docker engine answered ${answer.status} while checking ${kind} ${ref}`);
  if (kind === 'exec') {
    const container = field(answer.body as Json, 'ContainerID');
    if (typeof container !== 'string') throw missing();
    await resolveOwned(engine, 'container', container, projectId).catch(() => {
      throw missing();
    });
    return String(field(answer.body as Json, 'ID') ?? ref);
  }
  const labels = labelsOf(answer.body, kind);
  if (!isObject(labels ?? null) || (labels as JsonObject)[OWNER_LABEL] !== projectId) throw missing();
  const id = kind === 'volume' ? field(answer.body as Json, 'Name') : field(answer.body as Json, 'Id');
  return typeof id === 'string' ? id : ref;
}

export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Refuses client labels in the reserved prefix, then stamps the owner label (Labels at `path` in the body). */
export function stampOwner(body: JsonObject, projectId: string): void {
  const labels = field(body, 'Labels');
  if (labels !== undefined && labels !== null && !isObject(labels)) throw new BodyError('Labels must be an object');
  const own: JsonObject = { ...((labels as JsonObject | undefined) ?? {}) };
  for (const key of Object.keys(own)) {
    if (key.toLowerCase().startsWith(LABEL_PREFIX)) {
      throw new BodyError(`label ${key} is reserved for the gateway (prefix ${LABEL_PREFIX})`);
    }
  }
  own[OWNER_LABEL] = projectId;
  setField(body, 'Labels', own);
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
      throw new BodyError('the filters parameter is not a JSON object');
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
  else throw new BodyError('the label filter must be a list');
  return JSON.stringify(filters);
}

const NANO = 1e9;

/** Default and maximum memory and CPU per container (HostConfig.Memory, NanoCpus / CpuQuota). */
export function applyLimits(hostConfig: JsonObject, limits: DockerLimits, fill: boolean): void {
  const memory = field(hostConfig, 'Memory');
  if (typeof memory === 'number' && memory > 0) {
    if (limits.maxMemory !== undefined && memory > limits.maxMemory) {
      throw new BodyError(`HostConfig.Memory (--memory) ${memory} is above the limit of ${limits.maxMemory} bytes per container`);
    }
  } else if (fill && limits.defaultMemory !== undefined) setField(hostConfig, 'Memory', limits.defaultMemory);
  else if (fill && limits.maxMemory !== undefined) setField(hostConfig, 'Memory', limits.maxMemory);

  const nano = field(hostConfig, 'NanoCpus');
  const quota = field(hostConfig, 'CpuQuota');
  const period = field(hostConfig, 'CpuPeriod');
  const cpus =
    typeof nano === 'number' && nano > 0
      ? nano / NANO
      : typeof quota === 'number' && quota > 0
        ? quota / (typeof period === 'number' && period > 0 ? period : 100_000)
        : undefined;
  if (cpus !== undefined) {
    if (limits.maxCpus !== undefined && cpus > limits.maxCpus) {
      throw new BodyError(`the CPU limit (--cpus) ${cpus} is above the limit of ${limits.maxCpus} CPUs per container`);
    }
  } else if (fill && (limits.defaultCpus ?? limits.maxCpus) !== undefined) {
    setField(hostConfig, 'NanoCpus', Math.round((limits.defaultCpus ?? (limits.maxCpus as number)) * NANO));
  }
}
