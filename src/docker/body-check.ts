import { bodyError, field, foldKey, isObject, setField, type Json, type JsonObject } from './json-body.js';
import { refuseReservedLabels } from './ownership.js';

/**
 * Host-escape fields of container create / update and exec create (invariants.md 18). Each refusal names the field
 * and the docker CLI option that sets it, so the user sees what to drop.
 */

const truthy = (v: Json | undefined): boolean => v !== undefined && v !== null && v !== false && v !== '' && v !== 0;
const nonEmpty = (v: Json | undefined): boolean =>
  Array.isArray(v) ? v.length > 0 : isObject(v) ? Object.keys(v).length > 0 : truthy(v);

/** `compose` is the docker-compose key that sets the field, for users who never typed the docker option. */
function refuse(fieldName: string, option: string, why = 'gives access to the host', compose?: string): never {
  const names = compose !== undefined ? `${option}; in compose: ${compose}` : option;
  throw bodyError(`${fieldName} (${names}) is not allowed through the gateway: it ${why}`);
}

const NAMESPACE_MODES: ReadonlyArray<[string, string, string]> = [
  ['NetworkMode', '--network', 'network_mode'],
  ['PidMode', '--pid', 'pid'],
  ['IpcMode', '--ipc', 'ipc'],
  ['UTSMode', '--uts', 'uts'],
  ['UsernsMode', '--userns', 'userns_mode'],
  ['CgroupnsMode', '--cgroupns', 'cgroup'],
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

/**
 * The engine's own networks every container may use; `host` is refused, `container:` is a container reference. Matched
 * exactly, as the engine does: `NONE` or `Bridge` is a network name it looks up, so it is checked like any other.
 */
const BUILTIN_NETWORKS = new Set(['', 'default', 'bridge', 'none']);
const CONTAINER_PREFIX = 'container:';

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
      refuse(`HostConfig.Binds ${bind}`, '-v /host/path:/path', 'mounts host paths; use named volumes (-v name:/path) or --mount type=volume', 'volumes: [/host/path:/path]');
    }
    refs.volumes.push({ field: 'HostConfig.Binds', option: `-v ${bind}`, name: source });
  }
}

function checkMounts(mounts: Json | undefined, refs: References): void {
  if (mounts === undefined || mounts === null) return;
  if (!Array.isArray(mounts)) throw bodyError('HostConfig.Mounts must be a list');
  for (const m of mounts) {
    const type = String(field(m, 'Type') ?? 'volume').toLowerCase();
    if (type !== 'volume' && type !== 'tmpfs') refuse(`HostConfig.Mounts type=${type}`, `--mount type=${type}`, 'is not a volume or tmpfs mount', `volumes: [{type: ${type}}]`);
    if (nonEmpty(field(m, 'BindOptions'))) refuse('HostConfig.Mounts BindOptions', '--mount bind-propagation', undefined, 'volumes: [{bind: {propagation}}]');
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
  if (lower === 'host') refuse(`${fieldName}=host`, '--network host', undefined, 'network_mode: host');
  if (BUILTIN_NETWORKS.has(name)) return;
  // The engine reads an endpoint's `container:x` key as a network of that name.
  if (lower.startsWith(CONTAINER_PREFIX)) throw bodyError(`${fieldName}: ${name} is not a network; a container's network namespace is shared with --network container:<name> (HostConfig.NetworkMode)`);
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

/**
 * `--security-opt` as dockerd reads it (the key before the first `=`, or else `:`, matched exactly): only what keeps
 * the engine's defaults passes. Anything else picks another seccomp or AppArmor profile, an SELinux label (another
 * container's MCS level, or `disable`), or writable cgroups, from which a container can lift its own limits.
 */
function checkSecurityOpt(opts: Json | undefined): void {
  if (opts === undefined || opts === null) return;
  if (!Array.isArray(opts)) throw bodyError('HostConfig.SecurityOpt (--security-opt) must be a list');
  for (const opt of opts) {
    if (typeof opt !== 'string') throw bodyError('HostConfig.SecurityOpt (--security-opt) entries must be strings');
    const split = /^([^=:]*)[=:]([\s\S]*)$/.exec(opt);
    const [key, value] = split !== null ? [split[1] as string, split[2] as string] : [opt, undefined];
    if (opt === 'no-new-privileges' || (key === 'no-new-privileges' && value !== undefined && GO_BOOL.has(value))) continue;
    if (key === 'seccomp' && value === 'builtin') continue;
    if (key === 'apparmor' && value === 'docker-default') continue;
    if (key === 'writable-cgroups' && value !== undefined && GO_FALSE.has(value)) continue;
    const where = `HostConfig.SecurityOpt ${opt}`;
    const option = `--security-opt ${opt}`;
    const compose = 'security_opt';
    const lower = key.toLowerCase().replace(/\s+/g, '');
    const unconfined = /^(unconfined|disable)$/i.test((value ?? '').trim());
    if (lower === 'seccomp') refuse(where, option, unconfined ? 'turns off the seccomp filter' : 'replaces the default seccomp profile', compose);
    if (lower === 'apparmor') refuse(where, option, unconfined ? 'turns off AppArmor' : "replaces the default AppArmor profile with another of the host's", compose);
    if (lower === 'label' || opt.trim().toLowerCase() === 'disable') {
      refuse(where, option, "sets the container's SELinux label (or turns labelling off), which keeps containers from each other and from the host", compose);
    }
    if (lower === 'writable-cgroups') refuse(where, option, 'makes the cgroup files writable from inside the container, which could then lift its own CPU, memory and process limits', compose);
    if (lower === 'systempaths') refuse(where, option, 'unmasks /proc and /sys paths of the host', compose);
    refuse(where, option, 'is not a security option the gateway knows', compose);
  }
}

/** strconv.ParseBool, which dockerd uses for `no-new-privileges=` and `writable-cgroups=`. */
const GO_FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);
const GO_BOOL = new Set([...GO_FALSE, '1', 't', 'T', 'true', 'TRUE', 'True']);

/** The engine's default CPU weight: more would take CPU time from other projects' containers under contention. */
const MAX_CPU_SHARES = 1024;
/**
 * Block I/O weight: the kernel's schedulers default to 100 (BFQ) or 500 (CFQ), so above 100 a container could take
 * disk time from other projects' containers; below it only gives its own away.
 */
const MAX_BLKIO_WEIGHT = 100;

/**
 * Block I/O weights and throttles. dockerd stats each device path on the host (a host path that does not exist is an
 * error naming it), so the paths must be device nodes under /dev; a throttle only slows the container itself.
 */
function checkBlkio(hc: JsonObject): void {
  const weight = field(hc, 'BlkioWeight');
  if (typeof weight === 'number' && weight > MAX_BLKIO_WEIGHT) {
    refuse(`HostConfig.BlkioWeight ${weight}`, '--blkio-weight', `gives the container more than the default share of disk time (at most ${MAX_BLKIO_WEIGHT} here), taken from other projects' containers`, 'blkio_config.weight');
  }
  const lists: ReadonlyArray<[string, string, string]> = [
    ['BlkioWeightDevice', '--blkio-weight-device', 'blkio_config.weight_device'],
    ['BlkioDeviceReadBps', '--device-read-bps', 'blkio_config.device_read_bps'],
    ['BlkioDeviceWriteBps', '--device-write-bps', 'blkio_config.device_write_bps'],
    ['BlkioDeviceReadIOps', '--device-read-iops', 'blkio_config.device_read_iops'],
    ['BlkioDeviceWriteIOps', '--device-write-iops', 'blkio_config.device_write_iops'],
  ];
  for (const [name, option, compose] of lists) {
    const entries = field(hc, name);
    if (entries === undefined || entries === null) continue;
    if (!Array.isArray(entries)) throw bodyError(`HostConfig.${name} (${option}) must be a list`);
    for (const entry of entries) {
      const path = field(entry, 'Path');
      if (typeof path !== 'string' || !/^\/dev\/[^\0]+$/.test(path) || path.split('/').includes('..')) {
        refuse(`HostConfig.${name} Path`, option, 'names a host path that is not a device under /dev', compose);
      }
      const devWeight = field(entry, 'Weight');
      if (typeof devWeight === 'number' && devWeight > MAX_BLKIO_WEIGHT) {
        refuse(`HostConfig.${name} Weight ${devWeight}`, option, `gives the container more than the default share of that disk's time (at most ${MAX_BLKIO_WEIGHT} here)`, compose);
      }
    }
  }
}

/** Resource settings that no configured limit covers but that reach past the container (limits.ts has the rest). */
function checkResources(hc: JsonObject): void {
  const nonZero = (name: string): boolean => truthy(field(hc, name));
  if (nonZero('CpuRealtimeRuntime')) refuse('HostConfig.CpuRealtimeRuntime', '--cpu-rt-runtime', 'gives the container real-time CPU time, which no CPU limit bounds', 'cpu_rt_runtime');
  if (nonZero('CpuRealtimePeriod')) refuse('HostConfig.CpuRealtimePeriod', '--cpu-rt-period', 'sets a real-time CPU budget, which no CPU limit bounds', 'cpu_rt_period');
  const shares = field(hc, 'CpuShares');
  if (typeof shares === 'number' && shares > MAX_CPU_SHARES) {
    refuse(`HostConfig.CpuShares ${shares}`, '--cpu-shares', `weighs the container above the default (${MAX_CPU_SHARES}) every other container has, taking CPU time from other projects' containers`, 'cpu_shares');
  }
  // Deprecated by the kernel and by the engine (ignored from API 1.42); on older kernels a kernel-memory limit made
  // the host unstable (the engine's own warning). The memory limit already bounds the container.
  if (nonZero('KernelMemory')) refuse('HostConfig.KernelMemory', '--kernel-memory', 'is deprecated, and on older kernels makes the host unstable; use --memory');
  if (nonZero('KernelMemoryTCP')) refuse('HostConfig.KernelMemoryTCP', 'the API field KernelMemoryTCP', 'is deprecated, and on older kernels makes the host unstable; use --memory');
  checkBlkio(hc);
}

function checkHostConfig(hc: Json | undefined, refs: References): void {
  if (hc === undefined || hc === null) return;
  if (!isObject(hc)) throw bodyError('HostConfig must be an object');
  if (nonEmpty(field(hc, 'Capabilities'))) refuse('HostConfig.Capabilities', '--cap-add (API 1.40)', 'replaces the default capability set');
  refuseUnknownHostConfig(hc);
  if (truthy(field(hc, 'Privileged'))) refuse('HostConfig.Privileged', '--privileged', undefined, 'privileged');
  checkBinds(field(hc, 'Binds'), refs);
  checkMounts(field(hc, 'Mounts'), refs);
  if (nonEmpty(field(hc, 'VolumeDriver'))) refuse('HostConfig.VolumeDriver', '--volume-driver', undefined, 'volume_driver');
  if (nonEmpty(field(hc, 'VolumesFrom'))) refuse('HostConfig.VolumesFrom', '--volumes-from', "reaches other containers' volumes", 'volumes_from');
  if (nonEmpty(field(hc, 'CapAdd'))) refuse('HostConfig.CapAdd', '--cap-add', undefined, 'cap_add');
  if (nonEmpty(field(hc, 'Devices'))) refuse('HostConfig.Devices', '--device', undefined, 'devices');
  if (nonEmpty(field(hc, 'DeviceCgroupRules'))) refuse('HostConfig.DeviceCgroupRules', '--device-cgroup-rule', undefined, 'device_cgroup_rules');
  if (nonEmpty(field(hc, 'DeviceRequests'))) refuse('HostConfig.DeviceRequests', '--gpus', undefined, 'deploy.resources.reservations.devices');
  for (const [name, option, compose] of NAMESPACE_MODES) {
    const mode = field(hc, name);
    if (typeof mode !== 'string' || mode === '') continue;
    const lower = mode.toLowerCase();
    if (lower === 'host') refuse(`HostConfig.${name}=host`, `${option} host`, undefined, `${compose}: host`);
    if (mode.startsWith(CONTAINER_PREFIX)) refs.containers.push({ field: `HostConfig.${name}`, option, name: mode.slice(CONTAINER_PREFIX.length) });
    // The engine matches `container:` exactly: `Container:x` would be looked up as a network named so.
    else if (lower.startsWith(CONTAINER_PREFIX)) throw bodyError(`HostConfig.${name}: write ${CONTAINER_PREFIX} in lower case (${option} container:<name>)`);
    else if (name === 'NetworkMode') checkNetwork(mode, 'HostConfig.NetworkMode', refs);
  }
  if (nonEmpty(field(hc, 'PortBindings'))) refuse('HostConfig.PortBindings', '-p', "publishes ports on the engine's host, which every tenant shares; reach the container from another container on its network", 'ports');
  if (truthy(field(hc, 'PublishAllPorts'))) refuse('HostConfig.PublishAllPorts', '-P', "publishes ports on the engine's host, which every tenant shares");
  if (nonEmpty(field(hc, 'Cgroup'))) refuse('HostConfig.Cgroup', '--cgroup');
  if (nonEmpty(field(hc, 'CgroupParent'))) refuse('HostConfig.CgroupParent', '--cgroup-parent', undefined, 'cgroup_parent');
  checkSecurityOpt(field(hc, 'SecurityOpt'));
  if (field(hc, 'MaskedPaths') !== undefined && field(hc, 'MaskedPaths') !== null) refuse('HostConfig.MaskedPaths', '--security-opt systempaths=unconfined');
  if (field(hc, 'ReadonlyPaths') !== undefined && field(hc, 'ReadonlyPaths') !== null) refuse('HostConfig.ReadonlyPaths', '--security-opt systempaths=unconfined');
  if (nonEmpty(field(hc, 'Sysctls'))) refuse('HostConfig.Sysctls', '--sysctl', undefined, 'sysctls');
  if (nonEmpty(field(hc, 'Runtime'))) refuse('HostConfig.Runtime', '--runtime', undefined, 'runtime');
  const logType = field(field(hc, 'LogConfig'), 'Type');
  if (nonEmpty(logType)) refuse('HostConfig.LogConfig', '--log-driver', 'changes how the host stores and ships logs', 'logging.driver');
  if (nonEmpty(field(field(hc, 'LogConfig'), 'Config'))) refuse('HostConfig.LogConfig.Config', '--log-opt', undefined, 'logging.options');
  const oom = field(hc, 'OomScoreAdj');
  if (typeof oom === 'number' && oom < 0) refuse('HostConfig.OomScoreAdj < 0', '--oom-score-adj', 'makes the host kill other processes first', 'oom_score_adj');
  if (truthy(field(hc, 'OomKillDisable'))) refuse('HostConfig.OomKillDisable', '--oom-kill-disable', "keeps the kernel from killing the container when it is out of memory: it hangs holding its memory, and without a memory limit the host kills other processes instead", 'oom_kill_disable');
  if (nonEmpty(field(hc, 'Links'))) refuse('HostConfig.Links', '--link', 'reaches other containers', 'links');
  if (nonEmpty(field(hc, 'ExtraHosts')) && JSON.stringify(field(hc, 'ExtraHosts')).includes('host-gateway')) {
    refuse('HostConfig.ExtraHosts host-gateway', '--add-host host-gateway', undefined, 'extra_hosts');
  }
  checkResources(hc);
}

/**
 * dockerd decodes a create body into a wrapper that still embeds a HostConfig at the top level (deprecated, from
 * before API 1.19): `Memory`, `MemorySwap`, `CpuShares`, `CpusetCpus` and `VolumeDriver` given there are copied into
 * HostConfig where it leaves them unset, and a lone `Cpuset` becomes `CpusetCpus` (checked on dockerd 20.10:
 * `{"CpuShares": 262144, "HostConfig": {}}` ran with 262144 shares). No current client sends them; any HostConfig
 * field at the top level with a value is refused, so the checks above see every setting the engine applies.
 */
function refuseTopLevelHostConfig(body: JsonObject): void {
  for (const key of Object.keys(body)) {
    const folded = foldKey(key);
    if ((KNOWN_HOST_CONFIG.has(folded) || folded === 'cpuset') && nonEmpty(body[key])) {
      throw bodyError(`${key} at the top level of a container create is read by the engine as a HostConfig setting (a deprecated form the gateway does not check there): give it in HostConfig`);
    }
  }
}

/** POST /containers/create: returns the containers, volumes and networks it names, which the caller must verify. */
export function checkContainerCreate(body: JsonObject): References {
  const refs = emptyReferences();
  refuseTopLevelHostConfig(body);
  checkHostConfig(field(body, 'HostConfig'), refs);
  if (nonEmpty(field(body, 'Volumes')) && isObject(field(body, 'Volumes') ?? null)) {
    for (const target of Object.keys(field(body, 'Volumes') as JsonObject)) {
      if (!target.startsWith('/')) throw bodyError(`Volumes: '${target}' is not an absolute container path`);
    }
  }
  const endpoints = field(field(body, 'NetworkingConfig'), 'EndpointsConfig');
  if (isObject(endpoints ?? null)) {
    for (const [name, settings] of Object.entries(endpoints as JsonObject)) {
      checkNetwork(name, 'NetworkingConfig.EndpointsConfig', refs);
      checkEndpointSettings(settings, `NetworkingConfig.EndpointsConfig.${name}`);
    }
  }
  return refs;
}

/**
 * A network's endpoint settings (a create's EndpointsConfig value, a connect's EndpointConfig). For a user-defined
 * network the engine joins the network its `NetworkID` names, not the one the key or the path names (moby's
 * getNetworkID; checked on dockerd 20.10): only the key is checked to be the caller's, so the id is refused. No client
 * sets it; the engine fills it in itself.
 */
export function checkEndpointSettings(settings: Json | undefined, where: string): void {
  if (settings === undefined || settings === null) return;
  if (!isObject(settings)) throw bodyError(`${where} must be an object`);
  if (nonEmpty(field(settings, 'NetworkID'))) {
    throw bodyError(`${where}.NetworkID is not allowed through the gateway: the engine would join the network it names rather than the one you named; leave it out`);
  }
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

/** Top-level fields of a create body the gateway knows; any other one with a value is refused (fail closed). */
function refuseUnknownFields(body: JsonObject, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(body)) {
    if (known.has(foldKey(key)) || !nonEmpty(body[key])) continue;
    throw bodyError(`${key} is not allowed in ${what} through the gateway: it is not a setting the gateway knows (Docker API 1.40 to 1.47); drop it`);
  }
}

const KNOWN_VOLUME_CREATE = new Set(['Name', 'Driver', 'DriverOpts', 'Labels', 'ClusterVolumeSpec'].map(foldKey));

/** POST /volumes/create: only the local driver, without options (which can bind host paths or devices). */
export function checkVolumeCreate(body: JsonObject): void {
  refuseUnknownFields(body, KNOWN_VOLUME_CREATE, 'a volume create');
  const driver = field(body, 'Driver');
  if (driver !== undefined && driver !== null && driver !== '' && driver !== 'local') {
    refuse('Driver', `docker volume create --driver ${String(driver)}`, 'is not the local driver', 'volumes.<name>.driver');
  }
  if (nonEmpty(field(body, 'DriverOpts'))) refuse('DriverOpts', 'docker volume create --opt', 'can mount host paths or devices (type, device, o=bind)', 'volumes.<name>.driver_opts');
  if (nonEmpty(field(body, 'ClusterVolumeSpec'))) refuse('ClusterVolumeSpec', 'docker volume create --availability', 'is a swarm feature');
}

/**
 * Names the engine would take for something else when another project's container names them: a letter-case variant
 * of its own networks (matched exactly, so looked up by name), `container:…` (an endpoint key the engine looks up by
 * name), or a 64-digit hex id (a container pinned to a removed network's id would find a network named so).
 */
function checkNetworkName(name: Json | undefined): void {
  if (typeof name !== 'string') return;
  const lower = name.toLowerCase();
  if (BUILTIN_NETWORKS.has(lower) || lower === 'host' || lower.startsWith(CONTAINER_PREFIX) || /^[0-9a-f]{64}$/.test(lower)) {
    throw bodyError(`the network name ${name} is not allowed through the gateway: the engine could take it for one of its own networks, a container or a network id; choose another name`);
  }
}

const KNOWN_NETWORK_CREATE = new Set(
  ['Name', 'CheckDuplicate', 'Driver', 'Scope', 'EnableIPv4', 'EnableIPv6', 'IPAM', 'Internal', 'Attachable', 'Ingress', 'ConfigOnly', 'ConfigFrom', 'Options', 'Labels'].map(foldKey),
);

/**
 * POST /networks/create: the tenant's own local bridge networks, without host-level options. `Attachable` passes:
 * docker-compose v1 sets it on every network it makes (invariants.md 35), and it only means something to swarm-scope
 * networks, which the scope and driver checks keep out.
 */
export function checkNetworkCreate(body: JsonObject): void {
  refuseUnknownFields(body, KNOWN_NETWORK_CREATE, 'a network create');
  checkNetworkName(field(body, 'Name'));
  const driver = field(body, 'Driver');
  if (driver !== undefined && driver !== null && driver !== '' && driver !== 'bridge') {
    refuse('Driver', `docker network create --driver ${String(driver)}`, 'is not the bridge driver', 'networks.<name>.driver');
  }
  const scope = field(body, 'Scope');
  if (scope !== undefined && scope !== null && scope !== '' && scope !== 'local') {
    refuse(`Scope ${String(scope)}`, `docker network create --scope ${String(scope)}`, 'is a swarm feature: networks made through the gateway are local to the engine');
  }
  if (nonEmpty(field(body, 'Options'))) refuse('Options', 'docker network create --opt', 'sets host-level network options', 'networks.<name>.driver_opts');
  if (truthy(field(body, 'ConfigOnly')) || nonEmpty(field(body, 'ConfigFrom'))) refuse('ConfigOnly/ConfigFrom', '--config-only/--config-from');
  if (truthy(field(body, 'Ingress'))) refuse('Ingress', 'docker network create --ingress', "is a swarm feature (the routing mesh, which publishes ports on the engine's host)");
}
