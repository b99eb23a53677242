import type { DockerLimits } from '../config/schema.js';
import { bodyError, field, isObject, setField, type Json, type JsonObject } from './json-body.js';

/**
 * The per-container limits of docker.limits on create and update, judged by what dockerd 20.10 makes of a body:
 *  - update changes only the fields it gives a non-zero value, so each field is bounded on its own, and the pair
 *    that only means something together (CFS quota / period) must come together;
 *  - a negative CPU quota, memory or swap means "no limit" to the engine, and a CpuQuota given beside NanoCpus
 *    replaces the quota NanoCpus makes (checked on the real engine: quota -1 beside NanoCpus 1e9 runs unlimited).
 * Each refusal names the HostConfig field, the docker option and the setting of docker.limits it would break.
 */

export type Change = 'create' | 'update';
type Limits = Partial<DockerLimits>;

const NANO = 1e9;
/** The CFS period dockerd uses for --cpus, and for a quota given without a period. */
const DEFAULT_CPU_PERIOD = 100_000;

/** A whole-number field, undefined when absent or null (which the daemon reads as unset, or unchanged by update). */
function whole(obj: JsonObject, name: string, what: string): number | undefined {
  const value = field(obj, name);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw bodyError(`${what} must be a whole number`);
  return value;
}

function checkCpu(hc: JsonObject, limits: Limits, change: Change): void {
  const nano = whole(hc, 'NanoCpus', 'HostConfig.NanoCpus (--cpus; in compose: cpus)') ?? 0;
  const quota = whole(hc, 'CpuQuota', 'HostConfig.CpuQuota (--cpu-quota; in compose: cpu_quota)') ?? 0;
  const period = whole(hc, 'CpuPeriod', 'HostConfig.CpuPeriod (--cpu-period; in compose: cpu_period)') ?? 0;
  const max = limits.maxCpus;
  if (max !== undefined) {
    const limit = `the limit of ${max} CPUs per container (docker.limits.maxCpus)`;
    if (nano < 0) throw bodyError(`HostConfig.NanoCpus (--cpus; in compose: cpus) ${nano} is not a CPU count: give at most ${max} CPUs`);
    if (quota < 0) throw bodyError(`HostConfig.CpuQuota (--cpu-quota; in compose: cpu_quota) ${quota} would lift ${limit}: a negative quota means no CPU limit at all`);
    if (period < 0) throw bodyError(`HostConfig.CpuPeriod (--cpu-period; in compose: cpu_period) ${period} is not a CFS period: give it with a quota, or use --cpus`);
    // The engine keeps the field an update leaves out: a new period under the old quota is a new number of CPUs.
    if (change === 'update' && quota > 0 !== period > 0) {
      throw bodyError(
        `an update of --cpu-quota or --cpu-period must give both (or use --cpus): the engine keeps the other as it is, so the CPUs they make together cannot be checked against ${limit}`,
      );
    }
    const asked: Array<[number, string]> = [
      [nano / NANO, '--cpus; in compose: cpus'],
      [quota / (period > 0 ? period : DEFAULT_CPU_PERIOD), '--cpu-quota / --cpu-period; in compose: cpu_quota / cpu_period'],
    ];
    for (const [cpus, option] of asked) {
      if (cpus > max) throw bodyError(`the CPU limit (${option}) of ${cpus} CPUs is above ${limit}`);
    }
  }
  const fill = limits.defaultCpus ?? max;
  if (change === 'create' && nano <= 0 && quota <= 0 && fill !== undefined) {
    // dockerd refuses NanoCpus beside a period: give the default as a quota of the period asked for.
    if (period > 0) setField(hc, 'CpuQuota', Math.round(fill * period));
    else setField(hc, 'NanoCpus', Math.round(fill * NANO));
  }
}

function checkMemory(hc: JsonObject, limits: Limits, change: Change): void {
  let memory = whole(hc, 'Memory', 'HostConfig.Memory (--memory; in compose: mem_limit)') ?? 0;
  const swap = whole(hc, 'MemorySwap', 'HostConfig.MemorySwap (--memory-swap; in compose: memswap_limit)') ?? 0;
  const reservation = whole(hc, 'MemoryReservation', 'HostConfig.MemoryReservation (--memory-reservation; in compose: mem_reservation)') ?? 0;
  const max = limits.maxMemory;
  if (max !== undefined) {
    const limit = `the limit of ${max} bytes per container (docker.limits.maxMemory)`;
    if (memory < 0) throw bodyError(`HostConfig.Memory (--memory; in compose: mem_limit) ${memory} would lift ${limit}: a negative memory limit means none`);
    if (memory > max) throw bodyError(`HostConfig.Memory (--memory; in compose: mem_limit) ${memory} is above ${limit}`);
    if (reservation > max) throw bodyError(`HostConfig.MemoryReservation (--memory-reservation; in compose: mem_reservation) ${reservation} is above ${limit}`);
  }
  const swapMax = swapLimit(limits);
  if (swapMax !== undefined) {
    const limit = `the limit of ${swapMax} bytes of memory and swap per container (docker.limits.maxMemorySwap, twice maxMemory unless set)`;
    if (swap < 0) throw bodyError(`HostConfig.MemorySwap (--memory-swap; in compose: memswap_limit) ${swap} would lift ${limit}: -1 means unlimited swap`);
    if (swap > swapMax) throw bodyError(`HostConfig.MemorySwap (--memory-swap; in compose: memswap_limit) ${swap} is above ${limit}`);
  }
  if (change !== 'create') return;
  const fill = limits.defaultMemory ?? max;
  if (memory <= 0 && fill !== undefined) {
    memory = fill;
    setField(hc, 'Memory', fill);
  }
  // Without a swap setting the engine gives twice the memory, which a maxMemorySwap below that must still bound.
  if (swap === 0 && memory > 0 && swapMax !== undefined) setField(hc, 'MemorySwap', Math.max(memory, Math.min(2 * memory, swapMax)));
}

/** Memory plus swap per container: maxMemorySwap, or twice maxMemory (the engine's own default ratio). */
function swapLimit(limits: Limits): number | undefined {
  return limits.maxMemorySwap ?? (limits.maxMemory !== undefined ? 2 * limits.maxMemory : undefined);
}

function checkPids(hc: JsonObject, limits: Limits, change: Change): void {
  const pids = whole(hc, 'PidsLimit', 'HostConfig.PidsLimit (--pids-limit; in compose: pids_limit)');
  const max = limits.maxPids;
  const limit = `the limit of ${max} processes per container (docker.limits.maxPids)`;
  if (pids !== undefined && pids > 0) {
    if (max !== undefined && pids > max) throw bodyError(`HostConfig.PidsLimit (--pids-limit; in compose: pids_limit) ${pids} is above ${limit}`);
  } else if (pids !== undefined && change === 'update') {
    // 0 and -1 mean no limit to the engine: an update may not lift it.
    if (max !== undefined) throw bodyError(`HostConfig.PidsLimit (--pids-limit; in compose: pids_limit) ${pids} would lift ${limit}`);
  } else if (change === 'create' && (limits.defaultPids ?? max) !== undefined) {
    setField(hc, 'PidsLimit', (limits.defaultPids ?? max) as number);
  }
}

/**
 * The rlimits dockerd passes on (as RLIMIT_<NAME upper-cased>); `rtprio` is refused, the capped ones are bounded.
 * A container that names none gets the engine's defaults (dockerd --default-ulimit, or its own process's limits): the
 * gateway does not fill them in, since runc cannot raise a limit above what the engine process itself holds.
 */
const KNOWN_ULIMITS = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

function ulimitCaps(limits: Limits): Map<string, [number, string]> {
  const caps = new Map<string, [number, string]>();
  if (limits.maxNofile !== undefined) caps.set('nofile', [limits.maxNofile, 'docker.limits.maxNofile']);
  if (limits.maxMemlock !== undefined) caps.set('memlock', [limits.maxMemlock, 'docker.limits.maxMemlock']);
  return caps;
}

function checkUlimits(hc: JsonObject, limits: Limits): void {
  const raw = field(hc, 'Ulimits');
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) throw bodyError('HostConfig.Ulimits (--ulimit) must be a list');
  const entries: Json[] = raw ?? [];
  const caps = ulimitCaps(limits);
  for (const entry of entries) {
    if (!isObject(entry)) throw bodyError('HostConfig.Ulimits (--ulimit) entries must be objects with Name, Soft and Hard');
    const name = field(entry, 'Name');
    if (typeof name !== 'string') throw bodyError('HostConfig.Ulimits (--ulimit) entries must have a Name');
    const lower = name.toLowerCase();
    const option = `--ulimit ${name}=...; in compose: ulimits`;
    if (lower === 'rtprio') {
      throw bodyError(`HostConfig.Ulimits ${name} (${option}) is not allowed through the gateway: it lets the container's processes run real-time (SCHED_FIFO, SCHED_RR), which no CPU limit bounds`);
    }
    if (!KNOWN_ULIMITS.has(lower)) throw bodyError(`HostConfig.Ulimits ${name} (${option}) is not a limit the gateway knows: drop it`);
    const soft = whole(entry, 'Soft', `HostConfig.Ulimits ${name} Soft`) ?? 0;
    const hard = whole(entry, 'Hard', `HostConfig.Ulimits ${name} Hard`) ?? 0;
    const cap = caps.get(lower);
    if (cap === undefined) continue;
    const [most, setting] = cap;
    // The engine passes the value as an unsigned number: a negative one is "unlimited".
    if (soft < 0 || hard < 0) throw bodyError(`HostConfig.Ulimits ${name} (${option}) of -1 (unlimited) would lift the limit of ${most} (${setting})`);
    if (soft > most || hard > most) throw bodyError(`HostConfig.Ulimits ${name} (${option}) ${soft}:${hard} is above the limit of ${most} (${setting})`);
  }
}

/**
 * Checks a create's HostConfig (filling the defaults of what it leaves unset) or an update's body (Resources at the
 * top level) against docker.limits.
 */
export function applyLimits(hostConfig: JsonObject, limits: Limits, change: Change): void {
  checkCpu(hostConfig, limits, change);
  checkMemory(hostConfig, limits, change);
  checkPids(hostConfig, limits, change);
  checkUlimits(hostConfig, limits);
}
