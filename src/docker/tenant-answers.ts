import type { Upstream } from '../proxy/upstream.js';
import { engineJson, type EngineAnswer } from './engine.js';
import { field, isObject, type Json, type JsonObject } from './json-body.js';
import { ownedFilter } from './ownership.js';
import { MIN_API_VERSION_TEXT, olderThanServed } from './policy.js';

/** Fields of `docker info` a tenant may know; the rest describes the host and other tenants. */
const INFO_FIELDS = ['ServerVersion', 'OSType', 'OperatingSystem', 'Architecture', 'NCPU', 'MemTotal', 'KernelVersion', 'OSVersion', 'CgroupVersion', 'Experimental'];

/**
 * `docker info` as a tenant sees it: the engine's harmless fields, and the counts from the project's own containers
 * (`own`, the engine's list filtered to the project) and the number of images it may use.
 */
export function tenantInfo(info: JsonObject, own: unknown, images: number): JsonObject {
  const redacted: JsonObject = { Name: 'zun-gateway', Containers: 0, Images: 0, Driver: '', SecurityOptions: [] };
  for (const k of INFO_FIELDS) if (info[k] !== undefined) redacted[k] = info[k] as Json;
  if (Array.isArray(own)) {
    const states = own.map((c) => String(field(c as JsonObject, 'State') ?? ''));
    const running = states.filter((s) => s === 'running').length;
    const paused = states.filter((s) => s === 'paused').length;
    Object.assign(redacted, { Containers: states.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: states.length - running - paused });
  }
  redacted.Images = images;
  return redacted;
}

/**
 * `docker version` shows the engine's oldest API version (1.12 on Docker 20.10); the gateway serves none older than
 * MIN_API_VERSION, so that is what it says, at the top and in the Engine component.
 */
export function tenantVersion(version: JsonObject): JsonObject {
  if (olderThanServed(version.MinAPIVersion)) version.MinAPIVersion = MIN_API_VERSION_TEXT;
  if (Array.isArray(version.Components)) {
    for (const c of version.Components) {
      const details = field(c, 'Details');
      if (isObject(details) && olderThanServed(details.MinAPIVersion)) details.MinAPIVersion = MIN_API_VERSION_TEXT;
    }
  }
  return version;
}

/** GET /info for a project: the engine's answer, its own containers and how many images it may use, composed by tenantInfo. */
export async function infoFor(engine: Upstream, projectId: string, imageCount: () => Promise<number>): Promise<EngineAnswer> {
  const [info, own, images] = await Promise.all([
    engineJson(engine, 'GET', '/info'),
    engineJson(engine, 'GET', `/containers/json?all=1&filters=${ownedFilter(projectId)}`),
    imageCount(),
  ]);
  return { status: info.status, body: isObject(info.body as Json) ? tenantInfo(info.body as JsonObject, own.body, images) : info.body };
}

/** GET /version through tenantVersion. */
export async function versionFor(engine: Upstream): Promise<EngineAnswer> {
  const version = await engineJson(engine, 'GET', '/version');
  return { status: version.status, body: isObject(version.body as Json) ? tenantVersion(version.body as JsonObject) : version.body };
}
