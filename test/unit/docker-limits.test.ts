import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { DockerLimits } from '../../src/config/schema.js';
import { GatewayError } from '../../src/errors.js';
import { parseBody, type JsonObject } from '../../src/docker/json-body.js';
import { applyLimits } from '../../src/docker/limits.js';

const body = (text: string): JsonObject => parseBody(Buffer.from(text));
const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.status === 400 && pattern.test(e.message));
const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** The limits of the report (maxCpus 1) with the schema's defaults for the rest. */
const limits: Partial<DockerLimits> = { defaultCpus: 1, maxCpus: 1, defaultMemory: 256 * MiB, maxMemory: GiB, maxPids: 4096, maxNofile: 1_048_576, maxMemlock: 64 * MiB };
const create = (text: string, l: Partial<DockerLimits> = limits): JsonObject => {
  const hc = body(text);
  applyLimits(hc, l, 'create');
  return hc;
};
const update = (text: string, l: Partial<DockerLimits> = limits): JsonObject => {
  const b = body(text);
  applyLimits(b, l, 'update');
  return b;
};

describe('Docker limits: CPU (docker.limits.maxCpus) on create and update, as dockerd combines the fields', () => {
  it('fills the default CPUs and refuses more than the maximum, by --cpus or by quota and period', () => {
    assert.equal(create('{}').NanoCpus, 1e9);
    refused(() => create('{"NanoCpus":2000000000}'), /--cpus; in compose: cpus\) of 2 CPUs is above the limit of 1 CPUs per container \(docker\.limits\.maxCpus\)/);
    refused(() => create('{"CpuQuota":300000,"CpuPeriod":100000}'), /--cpu-quota \/ --cpu-period; in compose: cpu_quota \/ cpu_period\) of 3 CPUs/);
    refused(() => create('{"CpuQuota":200000}'), /of 2 CPUs/);
    assert.deepEqual(create('{"CpuQuota":50000,"CpuPeriod":100000}'), { CpuQuota: 50000, CpuPeriod: 100000, Memory: 256 * MiB, MemorySwap: 512 * MiB, PidsLimit: 4096 });
  });

  it('refuses a negative quota, which the engine reads as no limit (the issue: docker update {"CpuQuota": -1} after a create with NanoCpus)', () => {
    refused(() => update('{"CpuQuota":-1}'), /HostConfig\.CpuQuota \(--cpu-quota; in compose: cpu_quota\) -1 would lift the limit of 1 CPUs per container \(docker\.limits\.maxCpus\)/);
    // Beside NanoCpus at create the quota replaces the one NanoCpus makes (real dockerd 20.10: cfs_quota_us -1).
    refused(() => create('{"NanoCpus":1000000000,"CpuQuota":-1}'), /would lift/);
    // Without NanoCpus the gateway would fill it, and the engine would still take the quota.
    refused(() => create('{"CpuQuota":-5}'), /would lift/);
    // With no maximum configured there is nothing to lift.
    update('{"CpuQuota":-1}', { maxPids: 4096 });
  });

  it('an update gives quota and period together: a period under the old quota is another number of CPUs', () => {
    // Created with 100000/100000 (1 CPU), a period of 1000 made 100 CPUs on the real engine.
    refused(() => update('{"CpuPeriod":1000}'), /must give both \(or use --cpus\)/);
    refused(() => update('{"CpuQuota":100000}'), /must give both/);
    refused(() => update('{"CpuQuota":100000,"CpuPeriod":1000}'), /of 100 CPUs is above/);
    update('{"CpuQuota":50000,"CpuPeriod":100000}');
    update('{"NanoCpus":500000000}');
    refused(() => update('{"NanoCpus":1500000000}'), /--cpus; in compose: cpus\) of 1\.5 CPUs/);
    // At create, a quota alone is over the engine's default period.
    assert.equal(create('{"CpuQuota":100000}').CpuQuota, 100000);
  });

  it('refuses negative NanoCpus and CpuPeriod, and values that are not whole numbers', () => {
    refused(() => create('{"NanoCpus":-1}'), /NanoCpus \(--cpus; in compose: cpus\) -1 is not a CPU count/);
    refused(() => update('{"CpuPeriod":-1,"CpuQuota":1000}'), /CpuPeriod \(--cpu-period; in compose: cpu_period\) -1 is not a CFS period/);
    refused(() => create('{"NanoCpus":0.5}'), /NanoCpus \(--cpus; in compose: cpus\) must be a whole number/);
    refused(() => update('{"CpuQuota":"-1"}'), /CpuQuota \(--cpu-quota; in compose: cpu_quota\) must be a whole number/);
  });

  it('a create with a period of its own gets the default CPUs as a quota of that period (dockerd refuses NanoCpus beside a period)', () => {
    const hc = create('{"CpuPeriod":50000}');
    assert.equal(hc.CpuQuota, 50000);
    assert.equal(hc.NanoCpus, undefined);
  });
});

describe('Docker limits: memory and swap (docker.limits.maxMemory, maxMemorySwap)', () => {
  it('fills the default memory and refuses more than the maximum, or a negative one (no limit)', () => {
    assert.equal(create('{}').Memory, 256 * MiB);
    refused(() => create('{"Memory":4294967296}'), /HostConfig\.Memory \(--memory; in compose: mem_limit\) 4294967296 is above the limit of 1073741824 bytes per container \(docker\.limits\.maxMemory\)/);
    refused(() => update('{"Memory":-1}'), /Memory \(--memory; in compose: mem_limit\) -1 would lift/);
    refused(() => create('{"Memory":-1}'), /would lift/);
    refused(() => update('{"MemoryReservation":2147483648}'), /MemoryReservation \(--memory-reservation; in compose: mem_reservation\) 2147483648 is above/);
    // An update that does not name the memory leaves it.
    assert.equal(update('{"CpuShares":512}').Memory, undefined);
  });

  it('refuses unlimited swap (-1) and more memory plus swap than twice maxMemory (or maxMemorySwap), on create and update', () => {
    refused(() => update('{"MemorySwap":-1}'), /MemorySwap \(--memory-swap; in compose: memswap_limit\) -1 would lift the limit of 2147483648 bytes of memory and swap per container.*-1 means unlimited swap/);
    refused(() => create('{"Memory":1073741824,"MemorySwap":-1}'), /would lift/);
    refused(() => update('{"MemorySwap":3221225472}'), /MemorySwap \(--memory-swap; in compose: memswap_limit\) 3221225472 is above the limit of 2147483648/);
    // Swap given without memory at create: the gateway fills the memory, the swap is still bounded.
    refused(() => create('{"MemorySwap":10737418240}'), /is above the limit/);
    update('{"Memory":536870912,"MemorySwap":1073741824}');
    refused(() => update('{"MemorySwap":1610612736}', { ...limits, maxMemorySwap: GiB }), /above the limit of 1073741824 bytes of memory and swap per container \(docker\.limits\.maxMemorySwap/);
  });

  it('a create without swap gets twice its memory, or maxMemorySwap when that is less', () => {
    assert.equal(create('{"Memory":268435456}').MemorySwap, 512 * MiB);
    assert.equal(create('{"Memory":805306368}', { ...limits, maxMemorySwap: GiB }).MemorySwap, GiB);
    assert.equal(create('{"Memory":268435456,"MemorySwap":268435456}').MemorySwap, 256 * MiB, 'its own swap setting stays');
  });
});

describe('Docker limits: processes (docker.limits.maxPids)', () => {
  it('bounds processes per container (a fork bomb must not use up the host PIDs): default, maximum, no lifting by update', () => {
    assert.equal(create('{}', { maxPids: 4096 }).PidsLimit, 4096);
    assert.equal(create('{"PidsLimit":100}', { defaultPids: 512, maxPids: 4096 }).PidsLimit, 100);
    assert.equal(create('{"PidsLimit":-1}', { defaultPids: 512, maxPids: 4096 }).PidsLimit, 512, 'no limit (-1) at create gets the default');
    refused(() => create('{"PidsLimit":100000}'), /PidsLimit \(--pids-limit; in compose: pids_limit\) 100000 is above the limit of 4096 processes per container \(docker\.limits\.maxPids\)/);
    refused(() => update('{"PidsLimit":0}'), /would lift the limit/);
    refused(() => update('{"PidsLimit":-1}'), /would lift the limit/);
    assert.equal(update('{"Memory":1000000}').PidsLimit, undefined, 'an update that does not name it leaves it');
  });
});

describe('Docker limits: ulimits (real-time priority refused; nofile and memlock capped)', () => {
  it('refuses rtprio in any letter case, on create and update (a SCHED_FIFO task is not bounded by the CFS quota)', () => {
    for (const name of ['rtprio', 'RTPRIO', 'RtPrio']) {
      refused(() => create(`{"Ulimits":[{"Name":"${name}","Soft":99,"Hard":99}]}`), new RegExp(`Ulimits ${name} \\(--ulimit ${name}=\\.\\.\\.; in compose: ulimits\\) is not allowed through the gateway: .*real-time`));
    }
    refused(() => update('{"Ulimits":[{"name":"rtprio","soft":1,"hard":1}]}'), /--ulimit rtprio/);
  });

  it('refuses a ulimit the gateway does not know (the engine passes any name on as RLIMIT_<NAME>)', () => {
    refused(() => create('{"Ulimits":[{"Name":"rtprio ","Soft":1,"Hard":1}]}'), /Ulimits rtprio  \(--ulimit rtprio =\.\.\.; in compose: ulimits\) is not a limit the gateway knows/);
    refused(() => create('{"Ulimits":[{"Name":"as","Soft":1,"Hard":1}]}'), /not a limit the gateway knows/);
    refused(() => create('{"Ulimits":{"nofile":1}}'), /must be a list/);
    refused(() => create('{"Ulimits":[{"Soft":1}]}'), /must have a Name/);
    // Others are the process's own business.
    create('{"Ulimits":[{"Name":"core","Soft":0,"Hard":0},{"Name":"nproc","Soft":100,"Hard":200},{"Name":"stack","Soft":-1,"Hard":-1}]}');
  });

  it('caps nofile and memlock (docker.limits.maxNofile, maxMemlock): above, or -1 (unlimited), is refused', () => {
    refused(() => create('{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2097152}]}'), /Ulimits nofile \(--ulimit nofile=\.\.\.; in compose: ulimits\) 1024:2097152 is above the limit of 1048576 \(docker\.limits\.maxNofile\)/);
    refused(() => create('{"Ulimits":[{"Name":"NOFILE","Soft":-1,"Hard":-1}]}'), /-1 \(unlimited\) would lift the limit of 1048576/);
    refused(() => create('{"Ulimits":[{"Name":"memlock","Soft":-1,"Hard":-1}]}'), /Ulimits memlock .* would lift the limit of 67108864 \(docker\.limits\.maxMemlock\)/);
    refused(() => update('{"Ulimits":[{"Name":"memlock","Soft":1,"Hard":134217728}]}'), /memlock .* is above the limit of 67108864/);
    create('{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":65536},{"Name":"memlock","Soft":8388608,"Hard":67108864}]}');
  });

  it('leaves a container that names no ulimits to the engine (runc cannot raise a limit above the engine process\'s own)', () => {
    assert.equal(create('{}').Ulimits, undefined);
    assert.deepEqual(create('{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":4096}]}').Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 4096 }]);
  });
});

describe('Docker limits: configuration', () => {
  const config = (limitsYaml: string) =>
    parseConfig(
      `keystone: {authUrl: "http://127.0.0.1:5000/v3", serviceCredentials: {username: gw, password: p, userDomainName: Default, projectName: service, projectDomainName: Default}}\ndocker: {${limitsYaml}}\n`,
      {},
    ).docker?.limits;

  it('caps nofile, memlock and networks per project by default, with or without a limits section; sizes take units', () => {
    assert.deepEqual(config(''), { maxNetworksPerProject: 5, maxPids: 4096, maxNofile: 1_048_576, maxMemlock: 64 * MiB });
    assert.equal(config('limits: {maxCpus: 2}')?.maxNetworksPerProject, 5);
    const set = config('limits: {maxMemory: 1g, maxMemorySwap: 1.5g, maxMemlock: 8m, maxNofile: 65536}');
    assert.equal(set?.maxMemorySwap, 1.5 * GiB);
    assert.equal(set?.maxMemlock, 8 * MiB);
    assert.equal(set?.maxNofile, 65536);
    assert.equal(config('limits: {maxCpus: 2}')?.maxNofile, 1_048_576);
  });

  it('refuses a maxMemorySwap below maxMemory (it counts memory and swap together)', () => {
    assert.throws(() => config('limits: {maxMemory: 1g, maxMemorySwap: 512m}'), /docker\.limits\.maxMemorySwap: maxMemorySwap counts memory and swap together: it must be at least maxMemory/);
  });
});
