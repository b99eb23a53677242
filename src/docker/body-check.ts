import { bodyError, field, foldKey, isObject, setField, type Json, type JsonObject } from './json-body.js';
import { refuseReservedLabels } from './ownership.js';

/**
 * Host-escape fields of container create / update and exec create (invariants.md 18). Each refusal names the field
 * and the docker CLI option that sets it, so the user sees what to drop.
 */

const truthy = (v: Json | undefined): boolean => v !== undefined && v !== null && v !== false && v !== '' && v !== 0;
const nonEmpty = (v: Json | undefined): boolean =>
  Array.isArray(v) ? v.length > 0 : isObject(v) ? Object.keys(v).length > 0 : truthy(v);

function refuse(fieldName: string, option: string, why = 'gives access to the host'): never {
  throw bodyError(`${fieldName} (${option}) is not allowed through the gateway: it ${why}`);
}

const NAMESPACE_MODES: ReadonlyArray<[string, string]> = [
  ['NetworkMode', '--network'],
  ['PidMode', '--pid'],
  ['IpcMode', '--ipc'],
  ['UTSMode', '--uts'],
  ['UsernsMode', '--userns'],
  ['CgroupnsMode', '--cgroupns'],
];

/** An object of another kind a create names, which the caller must check is the tenant's before the engine sees it. */
export interface Reference {
  readonly field: string;
  readonly option: string;
  readonly name: string;
}

/** What a container create names besides itself: each must be the caller's (or, for a volume, become the caller's). */
export interface References {
  /** `container:<x>` namespace modes. */
  readonly containers: Reference[];
  /** Named volumes, from Binds (`-v name:/path`) and Mounts (`--mount type=volume,source=name`). */
  readonly volumes: Array<Reference & { readonly labels?: JsonObject }>;
  /** User-defined networks, from NetworkMode and NetworkingConfig. */
  readonly networks: Reference[];
}

const emptyReferences = (): References => ({ containers: [], volumes: [], networks: [] });

/** A volume name as the engine accepts it: anything else in a volume's place is a host path. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The engine's own networks every container may use; `host` is refused, `container:` is a container reference. */
const BUILTIN_NETWORKS = new Set(['', 'default', 'bridge', 'none']);

/** `-v` entries: `name:/path[:mode]` is a named volume, `/path` an anonymous one; a host path is refused. */
function checkBinds(binds: Json | undefined, refs: References): void {
  if (binds === undefined || binds === null) return;
  if (!Array.isArray(binds)) throw bodyError('HostConfig.Binds must be a list');
  for (const bind of binds) {
    if (typeof bind !== 'string') throw bodyError('HostConfig.Binds entries must be strings');
    const parts = bind.split(':');
    if (parts.length === 1 && bind.startsWith('/')) continue;
    const source = parts[0] as string;
    if (parts.length > 3 || !VOLUME_NAME.test(source)) {
      refuse(`HostConfig.Binds ${bind}`, '-v /host/path:/path', 'mounts host paths; use named volumes (-v name:/path) or --mount type=volume');
    }
    refs.volumes.push({ field: 'HostConfig.Binds', option: `-v ${bind}`, name: source });
  }
}

function checkMounts(mounts: Json | undefined, refs: References): void {
  if (mounts === undefined || mounts === null) return;
  if (!Array.isArray(mounts)) throw bodyError('HostConfig.Mounts must be a list');
  for (const m of mounts) {
    const type = String(field(m, 'Type') ?? 'volume').toLowerCase();
    if (type !== 'volume' && type !== 'tmpfs') refuse(`HostConfig.Mounts type=${type}`, `--mount type=${type}`, 'is not a volume or tmpfs mount');
    if (nonEmpty(field(m, 'BindOptions'))) refuse('HostConfig.Mounts BindOptions', '--mount bind-propagation');
    const volumeOptions = field(m, 'VolumeOptions');
    const driver = field(volumeOptions, 'DriverConfig');
    if (nonEmpty(driver)) {
      refuse('HostConfig.Mounts VolumeOptions.DriverConfig', '--mount volume-driver/volume-opt', 'can mount host paths through the volume driver');
    }
    const labels = field(volumeOptions, 'Labels');
    refuseReservedLabels(labels, 'HostConfig.Mounts VolumeOptions.Labels');
    const source = field(m, 'Source');
    if (type !== 'volume' || source === undefined || source === null || source === '') continue;
    if (typeof source !== 'string' || !VOLUME_NAME.test(source)) refuse('HostConfig.Mounts Source', '--mount source', 'names a host path');
    refs.volumes.push({ field: 'HostConfig.Mounts', option: `--mount source=${source}`, name: source, ...(isObject(labels ?? null) ? { labels: labels as JsonObject } : {}) });
  }
}

/** A network a container joins: the engine's own ones pass, `host` is refused, others must be the caller's. */
function checkNetwork(name: string, fieldName: string, refs: References): void {
  const lower = name.toLowerCase();
  if (BUILTIN_NETWORKS.has(lower) || lower.startsWith('container:')) return;
  if (lower === 'host') refuse(`${fieldName}=host`, '--network host');
  refs.networks.push({ field: fieldName, option: `--network ${name}`, name });
}

/**
 * Every HostConfig field of the Docker Engine API 1.40 to 1.47 (its Resources included) that the checks below either
 * check or know to be harmless. Any other field with a value is refused: a field added by a newer engine (or an
 * older one's, like 1.40's Capabilities) must not reach the engine unchecked just because the gateway does not
 * know it. The docker CLI sends many of these with zero values, which pass whatever the field.
 */
const KNOWN_HOST_CONFIG = new Set(
  [
    // Resources
    'CpuShares', 'Memory', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
    'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime',
    'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemory', 'KernelMemoryTCP',
    'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'NanoCpus', 'OomKillDisable', 'Init', 'PidsLimit', 'Ulimits',
    'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth',
    // the rest of HostConfig
    'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'VolumeDriver',
    'VolumesFrom', 'Mounts', 'ConsoleSize', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch',
    'ExtraHosts', 'GroupAdd', 'IpcMode', 'Cgroup', 'Links', 'OomScoreAdj', 'PidMode', 'Privileged', 'PublishAllPorts',
    'ReadonlyRootfs', 'SecurityOpt', 'StorageOpt', 'Tmpfs', 'UTSMode', 'UsernsMode', 'ShmSize', 'Sysctls', 'Runtime',
    'Isolation', 'MaskedPaths', 'ReadonlyPaths',
  ].map(foldKey),
);

/** Fields the gateway does not know are refused when they carry a value (KNOWN_HOST_CONFIG). */
function refuseUnknownHostConfig(hc: JsonObject): void {
  for (const key of Object.keys(hc)) {
    if (KNOWN_HOST_CONFIG.has(foldKey(key)) || !nonEmpty(hc[key])) continue;
    throw bodyError(
      `HostConfig.${key} is not allowed through the gateway: it is not a setting the gateway knows (Docker API 1.40 to 1.47), so it cannot check what it does to the host; drop it`,
    );
  }
}

function checkHostConfig(hc: Json | undefined, refs: References): void {
  if (hc === undefined || hc === null) return;
  if (!isObject(hc)) throw bodyError('HostConfig must be an object');
  if (nonEmpty(field(hc, 'Capabilities'))) refuse('HostConfig.Capabilities', '--cap-add (API 1.40)', 'replaces the default capability set');
  refuseUnknownHostConfig(hc);
  if (truthy(field(hc, 'Privileged'))) refuse('HostConfig.Privileged', '--privileged');
  checkBinds(field(hc, 'Binds'), refs);
  checkMounts(field(hc, 'Mounts'), refs);
  if (nonEmpty(field(hc, 'VolumeDriver'))) refuse('HostConfig.VolumeDriver', '--volume-driver');
  if (nonEmpty(field(hc, 'VolumesFrom'))) refuse('HostConfig.VolumesFrom', '--volumes-from', "reaches other containers' volumes");
  if (nonEmpty(field(hc, 'CapAdd'))) refuse('HostConfig.CapAdd', '--cap-add');
  if (nonEmpty(field(hc, 'Devices'))) refuse('HostConfig.Devices', '--device');
  if (nonEmpty(field(hc, 'DeviceCgroupRules'))) refuse('HostConfig.DeviceCgroupRules', '--device-cgroup-rule');
  if (nonEmpty(field(hc, 'DeviceRequests'))) refuse('HostConfig.DeviceRequests', '--gpus');
  for (const [name, option] of NAMESPACE_MODES) {
    const mode = field(hc, name);
    if (typeof mode !== 'string' || mode === '') continue;
    const lower = mode.toLowerCase();
    if (lower === 'host') refuse(`HostConfig.${name}=host`, `${option} host`);
    if (lower.startsWith('container:')) refs.containers.push({ field: `HostConfig.${name}`, option, name: mode.slice('container:'.length) });
    else if (name === 'NetworkMode') checkNetwork(mode, 'HostConfig.NetworkMode', refs);
  }
  if (nonEmpty(field(hc, 'PortBindings'))) refuse('HostConfig.PortBindings', '-p', "publishes ports on the engine's host, which every tenant shares; reach the container from another container on its network");
  if (truthy(field(hc, 'PublishAllPorts'))) refuse('HostConfig.PublishAllPorts', '-P', "publishes ports on the engine's host, which every tenant shares");
  if (nonEmpty(field(hc, 'Cgroup'))) refuse('HostConfig.Cgroup', '--cgroup');
  if (nonEmpty(field(hc, 'CgroupParent'))) refuse('HostConfig.CgroupParent', '--cgroup-parent');
  const securityOpt = field(hc, 'SecurityOpt');
  if (Array.isArray(securityOpt)) {
    for (const opt of securityOpt) {
      const o = String(opt).toLowerCase().replace(/\s+/g, '');
      if (/^(seccomp[=:]unconfined|apparmor[=:]unconfined|label[=:]disable|systempaths[=:]unconfined)/.test(o)) {
        refuse(`HostConfig.SecurityOpt ${String(opt)}`, `--security-opt ${String(opt)}`);
      }
      if (/^seccomp[=:]/.test(o) && !/^seccomp[=:]builtin$/.test(o)) refuse('HostConfig.SecurityOpt seccomp profile', '--security-opt seccomp=', 'replaces the default seccomp profile');
    }
  }
  if (field(hc, 'MaskedPaths') !== undefined && field(hc, 'MaskedPaths') !== null) refuse('HostConfig.MaskedPaths', '--security-opt systempaths=unconfined');
  if (field(hc, 'ReadonlyPaths') !== undefined && field(hc, 'ReadonlyPaths') !== null) refuse('HostConfig.ReadonlyPaths', '--security-opt systempaths=unconfined');
  if (nonEmpty(field(hc, 'Sysctls'))) refuse('HostConfig.Sysctls', '--sysctl');
  if (nonEmpty(field(hc, 'Runtime'))) refuse('HostConfig.Runtime', '--runtime');
  const logType = field(field(hc, 'LogConfig'), 'Type');
  if (nonEmpty(logType)) refuse('HostConfig.LogConfig', '--log-driver', 'changes how the host stores and ships logs');
  if (nonEmpty(field(field(hc, 'LogConfig'), 'Config'))) refuse('HostConfig.LogConfig.Config', '--log-opt');
  const oom = field(hc, 'OomScoreAdj');
  if (typeof oom === 'number' && oom < 0) refuse('HostConfig.OomScoreAdj < 0', '--oom-score-adj', 'makes the host kill other processes first');
  if (truthy(field(hc, 'OomKillDisable'))) refuse('HostConfig.OomKillDisable', '--oom-kill-disable');
  if (nonEmpty(field(hc, 'Links'))) refuse('HostConfig.Links', '--link', 'reaches other containers');
  if (nonEmpty(field(hc, 'ExtraHosts')) && JSON.stringify(field(hc, 'ExtraHosts')).includes('host-gateway')) {
    refuse('HostConfig.ExtraHosts host-gateway', '--add-host host-gateway');
  }
}

/** POST /containers/create: returns the containers, volumes and networks it names, which the caller must verify. */
export function checkContainerCreate(body: JsonObject): References {
  const refs = emptyReferences();
  checkHostConfig(field(body, 'HostConfig'), refs);
  if (nonEmpty(field(body, 'Volumes')) && isObject(field(body, 'Volumes') ?? null)) {
    for (const target of Object.keys(field(body, 'Volumes') as JsonObject)) {
      if (!target.startsWith('/')) throw bodyError(`Volumes: '${target}' is not an absolute container path`);
    }
  }
  const endpoints = field(field(body, 'NetworkingConfig'), 'EndpointsConfig');
  if (isObject(endpoints ?? null)) {
    for (const name of Object.keys(endpoints as JsonObject)) checkNetwork(name, 'NetworkingConfig.EndpointsConfig', refs);
  }
  return refs;
}

/** POST /containers/{id}/update takes HostConfig fields at the top level: the same checks apply. */
export function checkContainerUpdate(body: JsonObject): void {
  const refs = emptyReferences();
  checkHostConfig(body, refs);
  const named = [...refs.containers, ...refs.volumes, ...refs.networks][0];
  if (named !== undefined) throw bodyError(`${named.field} cannot be changed by update`);
}

/** POST /containers/{id}/exec */
export function checkExecCreate(body: JsonObject): void {
  if (truthy(field(body, 'Privileged'))) refuse('Privileged', 'docker exec --privileged');
}

/** POST /volumes/create: only the local driver, without options (which can bind host paths or devices). */
export function checkVolumeCreate(body: JsonObject): void {
  const driver = field(body, 'Driver');
  if (driver !== undefined && driver !== null && driver !== '' && driver !== 'local') {
    refuse('Driver', `docker volume create --driver ${String(driver)}`, 'is not the local driver');
  }
  if (nonEmpty(field(body, 'DriverOpts'))) refuse('DriverOpts', 'docker volume create --opt', 'can mount host paths or devices (type, device, o=bind)');
  if (nonEmpty(field(body, 'ClusterVolumeSpec'))) refuse('ClusterVolumeSpec', 'docker volume create --availability', 'is a swarm feature');
}

/** POST /networks/create: plain bridge-less networks of the tenant; no host-level options. */
export function checkNetworkCreate(body: JsonObject): void {
  const driver = field(body, 'Driver');
  if (driver !== undefined && driver !== null && driver !== '' && driver !== 'bridge') {
    refuse('Driver', `docker network create --driver ${String(driver)}`, 'is not the bridge driver');
  }
  if (nonEmpty(field(body, 'Options'))) refuse('Options', 'docker network create --opt', 'sets host-level network options');
  if (truthy(field(body, 'ConfigOnly')) || nonEmpty(field(body, 'ConfigFrom'))) refuse('ConfigOnly/ConfigFrom', '--config-only/--config-from');
  if (truthy(field(body, 'Ingress')) || truthy(field(body, 'Attachable'))) refuse('Ingress/Attachable', '--ingress/--attachable', 'is a swarm feature');
}
