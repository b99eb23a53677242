import type { DockerLimits } from '../config/schema.js';
import { bodyError, field, setField, type JsonObject } from './json-body.js';

const NANO = 1e9;

/** Default and maximum memory and CPU per container (HostConfig.Memory, NanoCpus / CpuQuota). */
export function applyLimits(hostConfig: JsonObject, limits: Partial<DockerLimits>, fill: boolean): void {
  const memory = field(hostConfig, 'Memory');
  if (typeof memory === 'number' && memory > 0) {
    if (limits.maxMemory !== undefined && memory > limits.maxMemory) {
      throw bodyError(`HostConfig.Memory (--memory) ${memory} is above the limit of ${limits.maxMemory} bytes per container`);
    }
  } else if (fill && limits.defaultMemory !== undefined) setField(hostConfig, 'Memory', limits.defaultMemory);
  else if (fill && limits.maxMemory !== undefined) setField(hostConfig, 'Memory', limits.maxMemory);

  const pids = field(hostConfig, 'PidsLimit');
  if (typeof pids === 'number' && pids > 0) {
    if (limits.maxPids !== undefined && pids > limits.maxPids) {
      throw bodyError(`HostConfig.PidsLimit (--pids-limit) ${pids} is above the limit of ${limits.maxPids} processes per container`);
    }
  } else if (pids !== undefined && pids !== null && !fill) {
    // 0 and -1 mean no limit to the engine: an update may not lift it.
    if (limits.maxPids !== undefined) throw bodyError(`HostConfig.PidsLimit (--pids-limit) ${String(pids)} would lift the limit of ${limits.maxPids} processes per container`);
  } else if (fill && (limits.defaultPids ?? limits.maxPids) !== undefined) {
    setField(hostConfig, 'PidsLimit', (limits.defaultPids ?? limits.maxPids) as number);
  }

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
      throw bodyError(`the CPU limit (--cpus) ${cpus} is above the limit of ${limits.maxCpus} CPUs per container`);
    }
  } else if (fill && (limits.defaultCpus ?? limits.maxCpus) !== undefined) {
    setField(hostConfig, 'NanoCpus', Math.round((limits.defaultCpus ?? (limits.maxCpus as number)) * NANO));
  }
}
