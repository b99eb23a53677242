import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { checkContainerCreate, checkContainerUpdate, checkExecCreate, checkNetworkCreate, checkVolumeCreate } from '../../src/docker/body-check.js';
import { applyLimits } from '../../src/docker/limits.js';
import { foldKey, parseBody, type JsonObject } from '../../src/docker/json-body.js';
import { OWNER_LABEL, ownerFilters, stampOwner } from '../../src/docker/ownership.js';
import { SERVED_ENDPOINTS, checkApiVersion, matchEndpoint, olderThanServed, writes } from '../../src/docker/policy.js';
import { checkPullSource, registryOf } from '../../src/docker/registries.js';

const body = (text: string) => parseBody(Buffer.from(text));
const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof GatewayError && pattern.test(e.message));

describe('Docker adapter: the body checker sees what the daemon sees', () => {
  it('refuses case-variant duplicates at any depth, including Go folding of the Kelvin sign and long s', () => {
    refused(() => body('{"HostConfig":{"Privileged":false,"privileged":true}}'), /both "Privileged" and "privileged"/);
    refused(() => body('{"hostconfig":{},"HostConfig":{}}'), /both/);
    refused(() => body('{"HostConfig":{"Binds":[],"Bind\u017f":["/:/host"]}}'), /both/);
    assert.equal(foldKey('\u212aernelMemory'), 'kernelmemory');
  });

  it('keeps the last of exact duplicates, as Go does, so the checked value is the forwarded one', () => {
    const parsed = body('{"HostConfig":{"Privileged":false,"Privileged":true}}');
    refused(() => checkContainerCreate(parsed), /Privileged \(--privileged; in compose: privileged\)/);
  });

  it("refuses HostConfig settings at the body's top level, which dockerd still merges into HostConfig (262144 CPU shares ran)", () => {
    for (const [top, name] of [
      ['"CpuShares":262144', 'CpuShares'],
      ['"VolumeDriver":"plugin"', 'VolumeDriver'],
      ['"memory":4294967296', 'memory'],
      ['"MemorySwap":-1', 'MemorySwap'],
      ['"Cpuset":"0-63"', 'Cpuset'],
      ['"Privileged":true', 'Privileged'],
    ] as const) {
      refused(() => checkContainerCreate(body(`{"Image":"x",${top},"HostConfig":{}}`)), new RegExp(`^${name} at the top level of a container create is read by the engine as a HostConfig setting.*give it in HostConfig`));
    }
    // Zero values (docker-py sends "Runtime": null beside its config) and the same settings inside HostConfig pass.
    checkContainerCreate(body('{"Image":"x","Runtime":null,"CpuShares":0,"HostConfig":{"CpuShares":512,"CpusetCpus":"0"}}'));
  });

  it('refuses invalid JSON and non-objects', () => {
    refused(() => body('{"a":'), /not valid JSON/);
    refused(() => body('[1]'), /must be a JSON object/);
  });

  const hostEscapes: Array<[string, RegExp]> = [
    ['{"Privileged":true}', /--privileged/],
    ['{"Binds":["/:/host"]}', /-v \/host\/path/],
    ['{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}', /--mount type=bind/],
    ['{"Mounts":[{"type":"BIND","source":"/","target":"/h"}]}', /--mount type=bind/],
    ['{"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"device":"/","o":"bind"}}}}]}', /DriverConfig/],
    ['{"Mounts":[{"Type":"volume","Source":"v","Target":"/d","BindOptions":{"Propagation":"rshared"}}]}', /bind-propagation/],
    ['{"CapAdd":["SYS_ADMIN"]}', /--cap-add/],
    ['{"Devices":[{"PathOnHost":"/dev/sda"}]}', /--device/],
    ['{"DeviceCgroupRules":["a *:* rwm"]}', /--device-cgroup-rule/],
    ['{"DeviceRequests":[{"Count":-1}]}', /--gpus/],
    ['{"NetworkMode":"host"}', /--network host/],
    ['{"PidMode":"host"}', /--pid host/],
    ['{"IpcMode":"HOST"}', /--ipc host/],
    ['{"UTSMode":"host"}', /--uts host/],
    ['{"UsernsMode":"host"}', /--userns host/],
    ['{"CgroupnsMode":"host"}', /--cgroupns host/],
    ['{"SecurityOpt":["seccomp=unconfined"]}', /--security-opt seccomp=unconfined/],
    ['{"SecurityOpt":["apparmor:unconfined"]}', /--security-opt/],
    ['{"SecurityOpt":["label=disable"]}', /--security-opt/],
    ['{"MaskedPaths":[]}', /MaskedPaths/],
    ['{"ReadonlyPaths":[]}', /ReadonlyPaths/],
    ['{"Sysctls":{"kernel.shm_rmid_forced":"1"}}', /--sysctl/],
    ['{"Runtime":"runc"}', /--runtime/],
    ['{"LogConfig":{"Type":"syslog"}}', /--log-driver/],
    ['{"VolumeDriver":"x"}', /--volume-driver/],
    ['{"VolumesFrom":["other"]}', /--volumes-from/],
    ['{"CgroupParent":"/"}', /--cgroup-parent/],
    ['{"Cgroup":"host"}', /--cgroup/],
    ['{"OomScoreAdj":-1000}', /--oom-score-adj/],
    // A seccomp profile of the client's own (`--security-opt seccomp=profile.json`, sent inline) can allow everything.
    ['{"SecurityOpt":["seccomp={\\"defaultAction\\":\\"SCMP_ACT_ALLOW\\"}"]}', /replaces the default seccomp profile/],
    ['{"SecurityOpt":["systempaths=unconfined"]}', /--security-opt systempaths=unconfined/],
    ['{"LogConfig":{"Config":{"max-file":"1000","max-size":"1g"}}}', /--log-opt/],
    ['{"OomKillDisable":true}', /--oom-kill-disable/],
    ['{"Links":["other:o"]}', /--link/],
    ['{"ExtraHosts":["h:host-gateway"]}', /--add-host host-gateway/],
    // API 1.40's own capability set: a 19.03 engine applies it instead of the default one.
    ['{"Capabilities":["CAP_SYS_ADMIN"]}', /Capabilities .*replaces the default capability set/],
    // A field the gateway does not know (a newer engine's, or made up) is refused when it carries a value.
    ['{"Annotations":{"run.oci.keep_original_groups":"1"}}', /HostConfig\.Annotations is not allowed.*not a setting the gateway knows/],
    ['{"NewHostEscape2030":true}', /HostConfig\.NewHostEscape2030 is not allowed/],
  ];
  for (const [hostConfig, option] of hostEscapes) {
    it(`refuses HostConfig ${hostConfig} naming the option`, () => {
      refused(() => checkContainerCreate(body(`{"Image":"x","HostConfig":${hostConfig}}`)), option);
    });
  }

  it('lets through unknown HostConfig fields without a value (the CLI sends zero values) and known ones in any letter case', () => {
    checkContainerCreate(body('{"Image":"x","HostConfig":{"Annotations":null,"Future":{},"Other":[],"Flag":false,"N":0,"S":"","memory":1000000,"CONSOLESIZE":[0,0]}}'));
    checkContainerUpdate(body('{"Memory":1000000,"RestartPolicy":{"Name":"always"},"PidsLimit":100}'));
    refused(() => checkContainerUpdate(body('{"Memory":1000000,"SomethingNew":1}')), /HostConfig\.SomethingNew is not allowed/);
  });

  it('returns container: references for the caller to check, and accepts an ordinary container', () => {
    assert.deepEqual(checkContainerCreate(body('{"Image":"x","HostConfig":{"NetworkMode":"container:web"}}')).containers, [
      { field: 'HostConfig.NetworkMode', option: '--network', name: 'web' },
    ]);
    assert.deepEqual(checkContainerCreate(body('{"Image":"x","Cmd":["sh"],"HostConfig":{"Memory":1000000,"Mounts":[{"Type":"tmpfs","Target":"/t"}],"NetworkMode":"none"}}')), {
      containers: [],
      volumes: [],
      networks: [],
    });
  });

  it("returns every namespace's container: reference, not only the network's (ownership is checked on each)", () => {
    assert.deepEqual(checkContainerCreate(body('{"Image":"x","HostConfig":{"PidMode":"container:a","IpcMode":"container:b"}}')).containers, [
      { field: 'HostConfig.PidMode', option: '--pid', name: 'a' },
      { field: 'HostConfig.IpcMode', option: '--ipc', name: 'b' },
    ]);
  });

  it('reads network and container names with the letter case the engine does (review 2026-12-07)', () => {
    // The engine matches its own networks exactly: NONE and Bridge are names it looks up, so they are checked as the caller's.
    const refs = checkContainerCreate(body('{"Image":"x","HostConfig":{"NetworkMode":"NONE"},"NetworkingConfig":{"EndpointsConfig":{"Bridge":{}}}}'));
    assert.deepEqual(refs.networks.map((r) => r.name), ['NONE', 'Bridge']);
    // `Container:x` is a network name to the engine, not a container reference; an endpoint key `container:x` too.
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"NetworkMode":"Container:a"}}')), /HostConfig.NetworkMode: write container: in lower case/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"PidMode":"CONTAINER:a"}}')), /HostConfig.PidMode: write container: in lower case/);
    refused(() => checkContainerCreate(body('{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"container:a":{}}}}')), /container:a is not a network/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"NetworkMode":"Host"}}')), /--network host/);
    // Names another project's container would have the engine take for something else are not made.
    for (const name of ['NONE', 'Bridge', 'default', 'HOST', 'container:x', 'Container:x', 'a'.repeat(64), 'ABCDEF0123456789'.repeat(4)]) {
      refused(() => checkNetworkCreate(body(JSON.stringify({ Name: name }))), /is not allowed through the gateway: the engine could take it for one of its own networks, a container or a network id/);
    }
    checkNetworkCreate(body('{"Name":"nonet"}'));
    checkNetworkCreate(body(JSON.stringify({ Name: 'a'.repeat(63) })));
  });

  it('returns every named volume (-v name:/path, --mount source=name) for the caller to claim; a lone path is an anonymous volume', () => {
    const refs = checkContainerCreate(
      body('{"Image":"x","HostConfig":{"Binds":["data:/d","logs:/l:ro","/anon"],"Mounts":[{"Type":"volume","Source":"cache","Target":"/c","VolumeOptions":{"Labels":{"tier":"1"}}},{"Type":"volume","Target":"/a"}]}}'),
    );
    assert.deepEqual(
      refs.volumes.map((v) => [v.name, v.labels]),
      [['data', undefined], ['logs', undefined], ['cache', { tier: '1' }]],
    );
  });

  it('refuses host paths and odd entries among -v binds, and mounts other than volume and tmpfs', () => {
    for (const bind of ['/:/host', '/var/run/docker.sock:/s', './rel:/x', '~/x:/x', 'a:b:c:d', '.hidden:/x']) {
      refused(() => checkContainerCreate(body(`{"Image":"x","HostConfig":{"Binds":["${bind}"]}}`)), /HostConfig.Binds/);
    }
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"Binds":[1]}}')), /strings/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}]}}')), /type=npipe/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"Mounts":[{"Type":"image","Source":"x","Target":"/x"}]}}')), /type=image/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"../x","Target":"/x"}]}}')), /host path/);
  });

  it("refuses the owner label in a mount's VolumeOptions.Labels (it would make the volume another project's)", () => {
    refused(
      () => checkContainerCreate(body(`{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/x","VolumeOptions":{"Labels":{"${OWNER_LABEL}":"other"}}}]}}`)),
      /reserved/,
    );
  });

  it('returns user-defined networks from NetworkMode and EndpointsConfig; the engine\'s own ones pass, host is refused', () => {
    const refs = checkContainerCreate(body('{"Image":"x","HostConfig":{"NetworkMode":"appnet"},"NetworkingConfig":{"EndpointsConfig":{"appnet":{},"other":{},"bridge":{}}}}'));
    assert.deepEqual(refs.networks.map((n) => [n.field, n.name]), [
      ['HostConfig.NetworkMode', 'appnet'],
      ['NetworkingConfig.EndpointsConfig', 'appnet'],
      ['NetworkingConfig.EndpointsConfig', 'other'],
    ]);
    for (const mode of ['default', 'bridge', 'none', '']) assert.deepEqual(checkContainerCreate(body(`{"Image":"x","HostConfig":{"NetworkMode":"${mode}"}}`)).networks, []);
    refused(() => checkContainerCreate(body('{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"HOST":{}}}}')), /--network host/);
  });

  it("refuses publishing ports on the engine's host (-p, -P)", () => {
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}')), /-p/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"PublishAllPorts":true}}')), /-P/);
    checkContainerCreate(body('{"Image":"x","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{}}}'));
  });

  it('applies the same checks to update, and Privileged to exec create', () => {
    refused(() => checkContainerUpdate(body('{"Privileged":true}')), /--privileged/);
    refused(() => checkContainerUpdate(body('{"Devices":[{"PathOnHost":"/dev/sda"}]}')), /--device/);
    refused(() => checkContainerUpdate(body('{"DeviceCgroupRules":["a *:* rwm"]}')), /--device-cgroup-rule/);
    refused(() => checkContainerUpdate(body('{"DeviceRequests":[{"Count":-1}]}')), /--gpus/);
    refused(() => checkContainerUpdate(body('{"CgroupParent":"/"}')), /--cgroup-parent/);
    refused(() => checkContainerUpdate(body('{"PidMode":"container:other"}')), /cannot be changed by update/);
    refused(() => checkContainerUpdate(body('{"Binds":["vol:/x"]}')), /cannot be changed by update/);
    refused(() => checkContainerUpdate(body('{"NetworkMode":"othernet"}')), /cannot be changed by update/);
    checkContainerUpdate(body('{"Memory":1000000,"RestartPolicy":{"Name":"always"}}'));
    refused(() => checkExecCreate(body('{"Cmd":["sh"],"privileged":true}')), /exec --privileged/);
    checkExecCreate(body('{"Cmd":["sh"]}'));
  });

  it('refuses volume and network options that reach the host', () => {
    refused(() => checkVolumeCreate(body('{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/"}}')), /--opt/);
    refused(() => checkVolumeCreate(body('{"Name":"v","Driver":"nfs"}')), /not the local driver/);
    checkVolumeCreate(body('{"Name":"v"}'));
    refused(() => checkNetworkCreate(body('{"Name":"n","Driver":"macvlan"}')), /not the bridge driver/);
    refused(() => checkVolumeCreate(body('{"Name":"v","ClusterVolumeSpec":{"Group":"g"}}')), /swarm feature/);
    refused(() => checkNetworkCreate(body('{"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}}')), /--opt/);
    refused(() => checkNetworkCreate(body('{"Name":"n","ConfigFrom":{"Network":"other"}}')), /--config-from/);
    checkNetworkCreate(body('{"Name":"n","Driver":"bridge"}'));

  });

  it('refuses labels in the reserved prefix, stamps the owner', () => {
    refused(() => stampOwner(body(`{"Labels":{"${OWNER_LABEL}":"other"}}`), 'p'), /reserved/);
    refused(() => stampOwner(body('{"Labels":{"ORG.OPENSTACK.ZUN-GATEWAY.x":"1"}}'), 'p'), /reserved/);
    const b = body('{"labels":{"app":"web"}}');
    stampOwner(b, 'p1');
    assert.deepEqual(b, { Labels: { app: 'web', [OWNER_LABEL]: 'p1' } });
  });

  it('merges the owner label into the client filters, both shapes', () => {
    assert.deepEqual(JSON.parse(ownerFilters(null, 'p')), { label: { [`${OWNER_LABEL}=p`]: true } });
    // The engine refuses an object that mixes both shapes: the added label follows the client's.
    assert.deepEqual(JSON.parse(ownerFilters('{"name":{"web":true}}', 'p')), { name: { web: true }, label: { [`${OWNER_LABEL}=p`]: true } });
    assert.deepEqual(JSON.parse(ownerFilters('{"name":["web"]}', 'p')), { name: ['web'], label: [`${OWNER_LABEL}=p`] });
    assert.deepEqual(JSON.parse(ownerFilters('{"label":["app=web"],"status":["running"]}', 'p')), { label: ['app=web', `${OWNER_LABEL}=p`], status: ['running'] });
    assert.deepEqual(JSON.parse(ownerFilters('{"label":{"app=web":true}}', 'p')), { label: { 'app=web': true, [`${OWNER_LABEL}=p`]: true } });
    refused(() => ownerFilters('nope', 'p'), /filters/);
  });
});

/** What the real clients send, captured from Debian's docker-compose 1.29.2 (docker-py 5.0.3) on its way to dockerd 20.10. */
const COMPOSE_V1 = {
  network: '{"Name": "p_default", "CheckDuplicate": true, "Labels": {"com.docker.compose.project": "p", "com.docker.compose.network": "default", "com.docker.compose.version": "1.29.2"}, "Attachable": true}',
  volume: '{"Name": "p_data", "Labels": {"com.docker.compose.project": "p", "com.docker.compose.volume": "data", "com.docker.compose.version": "1.29.2"}}',
  container:
    '{"Tty": false, "OpenStdin": false, "StdinOnce": false, "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Cmd": ["sleep", "600"], "Image": "local/busybox:latest", "Volumes": {"/data": {}}, "NetworkDisabled": false, "HostConfig": {"NetworkMode": "p_default", "VolumesFrom": [], "Binds": ["p_data:/data:rw"], "PortBindings": {}, "Links": [], "LogConfig": {"Type": "", "Config": {}}}, "NetworkingConfig": {"EndpointsConfig": {"p_default": {"Aliases": ["client"], "IPAMConfig": {}}}}, "Labels": {"com.docker.compose.project": "p", "com.docker.compose.service": "client", "com.docker.compose.oneoff": "False", "com.docker.compose.container-number": "1", "com.docker.compose.version": "1.29.2"}}',
};
/** A HostConfig as the Go SDK (compose v2, Testcontainers) sends it: every field without omitempty, at its zero value. */
const GO_SDK_ZERO_HOST_CONFIG =
  '{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":null},"NetworkMode":"","PortBindings":null,"RestartPolicy":{"Name":"","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":null,"DnsOptions":null,"DnsSearch":null,"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Runtime":"","Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null}';
const GO_SDK_ZERO_NETWORK = '{"Name":"n","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":null,"Config":null},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null}';
const LIMITS = { defaultCpus: 1, maxCpus: 2, defaultMemory: 2 ** 28, maxMemory: 2 ** 30, maxPids: 4096, maxNofile: 1_048_576, maxMemlock: 2 ** 26 };

describe("Docker adapter: what real clients send passes, what changes isolation is refused with the compose option's name", () => {
  it("accepts docker-compose v1's network, volume and container creates as they are sent (Attachable: true on a local bridge)", () => {
    checkNetworkCreate(body(COMPOSE_V1.network));
    checkVolumeCreate(body(COMPOSE_V1.volume));
    const create = body(COMPOSE_V1.container);
    const refs = checkContainerCreate(create);
    assert.deepEqual(refs.volumes.map((v) => v.name), ['p_data']);
    assert.deepEqual([...new Set(refs.networks.map((n) => n.name))], ['p_default']);
    applyLimits(create.HostConfig as JsonObject, LIMITS, 'create');
  });

  it('accepts the Go SDK\'s zero values for every HostConfig field and network create field, on create and update', () => {
    const hc = body(GO_SDK_ZERO_HOST_CONFIG);
    checkContainerCreate(body(`{"Image":"x","HostConfig":${GO_SDK_ZERO_HOST_CONFIG}}`));
    applyLimits(hc, LIMITS, 'create');
    assert.equal(hc.NanoCpus, 1e9, 'zero means unset: the default is filled');
    const upd = body(GO_SDK_ZERO_HOST_CONFIG);
    checkContainerUpdate(upd);
    applyLimits(upd, LIMITS, 'update');
    checkNetworkCreate(body(GO_SDK_ZERO_NETWORK));
  });

  it('refuses swarm-scope and ingress networks (where Attachable means something), other drivers and options, naming the compose key', () => {
    refused(() => checkNetworkCreate(body('{"Name":"n","Attachable":true,"Scope":"swarm"}')), /Scope swarm \(docker network create --scope swarm\) .*swarm feature/);
    refused(() => checkNetworkCreate(body('{"Name":"n","Scope":"global"}')), /--scope global/);
    refused(() => checkNetworkCreate(body('{"Name":"n","Ingress":true}')), /--ingress.*routing mesh/);
    refused(() => checkNetworkCreate(body('{"Name":"n","Driver":"macvlan"}')), /--driver macvlan; in compose: networks\.<name>\.driver/);
    refused(() => checkNetworkCreate(body('{"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}}')), /in compose: networks\.<name>\.driver_opts/);
    refused(() => checkVolumeCreate(body('{"Name":"v","DriverOpts":{"o":"bind"}}')), /in compose: volumes\.<name>\.driver_opts/);
  });

  it('refuses network and volume create fields the gateway does not know when they carry a value', () => {
    refused(() => checkNetworkCreate(body('{"Name":"n","BridgeToHost2030":true}')), /BridgeToHost2030 is not allowed in a network create/);
    refused(() => checkVolumeCreate(body('{"Name":"v","Mountpoint":"/"}')), /Mountpoint is not allowed in a volume create/);
    checkNetworkCreate(body('{"Name":"n","Unused":null,"Other":""}'));
  });

  it('names the compose key beside the docker option in container refusals', () => {
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"PidMode":"host"}}')), /--pid host; in compose: pid: host/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"Binds":["/etc:/x"]}}')), /in compose: volumes: \[\/host\/path:\/path\]/);
    refused(() => checkContainerCreate(body('{"Image":"x","HostConfig":{"CapAdd":["NET_ADMIN"]}}')), /--cap-add; in compose: cap_add/);
  });
});

describe('Docker adapter: resource settings no configured limit covers', () => {
  const hc = (fields: string) => body(`{"Image":"x","HostConfig":${fields}}`);

  it('refuses real-time CPU (--cpu-rt-runtime, --cpu-rt-period) on create and update: a SCHED_FIFO task is not bounded by the CFS quota', () => {
    refused(() => checkContainerCreate(hc('{"CpuRealtimeRuntime":950000}')), /CpuRealtimeRuntime \(--cpu-rt-runtime; in compose: cpu_rt_runtime\) is not allowed .*real-time CPU time/);
    refused(() => checkContainerCreate(hc('{"CpuRealtimePeriod":1000000}')), /--cpu-rt-period/);
    refused(() => checkContainerUpdate(body('{"CpuRealtimeRuntime":-1}')), /--cpu-rt-runtime/);
    checkContainerCreate(hc('{"CpuRealtimeRuntime":0,"CpuRealtimePeriod":0}'));
  });

  it('refuses CPU weights above the default every other container has (--cpu-shares > 1024)', () => {
    refused(() => checkContainerCreate(hc('{"CpuShares":262144}')), /CpuShares 262144 \(--cpu-shares; in compose: cpu_shares\).*above the default \(1024\)/);
    refused(() => checkContainerUpdate(body('{"CpuShares":2048}')), /--cpu-shares/);
    checkContainerUpdate(body('{"CpuShares":1024}'));
    checkContainerCreate(hc('{"CpuShares":512}'));
  });

  it('refuses kernel memory limits (deprecated; they destabilized older kernels)', () => {
    refused(() => checkContainerCreate(hc('{"KernelMemory":67108864}')), /--kernel-memory/);
    refused(() => checkContainerUpdate(body('{"KernelMemoryTCP":-1}')), /KernelMemoryTCP/);
  });

  it('refuses block I/O weights above 100 and device paths outside /dev (dockerd stats them on the host); throttles of /dev devices pass', () => {
    refused(() => checkContainerCreate(hc('{"BlkioWeight":1000}')), /BlkioWeight 1000 \(--blkio-weight; in compose: blkio_config\.weight\).*more than the default share/);
    refused(() => checkContainerUpdate(body('{"BlkioWeight":500}')), /--blkio-weight/);
    refused(() => checkContainerCreate(hc('{"BlkioWeightDevice":[{"Path":"/dev/sda","Weight":1000}]}')), /--blkio-weight-device/);
    for (const path of ['/etc/shadow', '/dev/../etc/shadow', 'sda', '']) {
      refused(() => checkContainerCreate(hc(`{"BlkioDeviceReadBps":[{"Path":"${path}","Rate":1}]}`)), /BlkioDeviceReadBps Path \(--device-read-bps.*not a device under \/dev/);
    }
    refused(() => checkContainerCreate(hc('{"BlkioDeviceWriteIOps":[{"Path":"/root/x","Rate":1}]}')), /--device-write-iops/);
    checkContainerCreate(hc('{"BlkioWeight":50,"BlkioWeightDevice":[{"Path":"/dev/sda","Weight":10}],"BlkioDeviceReadBps":[{"Path":"/dev/sda","Rate":1048576}],"BlkioDeviceWriteIOps":[{"Path":"/dev/vda","Rate":100}]}'));
  });

  it('--security-opt: only the defaults pass (no-new-privileges, seccomp=builtin, apparmor=docker-default, writable-cgroups=false)', () => {
    checkContainerCreate(hc('{"SecurityOpt":["no-new-privileges","no-new-privileges:true","no-new-privileges=false","seccomp=builtin","apparmor=docker-default","writable-cgroups=false"]}'));
    const refusedOpts: Array<[string, RegExp]> = [
      ['writable-cgroups=true', /--security-opt writable-cgroups=true; in compose: security_opt\) .*lift its own CPU, memory and process limits/],
      ['writable-cgroups:1', /writable from inside/],
      ['apparmor=some-host-profile', /replaces the default AppArmor profile/],
      ['label=level:s0:c100,c200', /SELinux label/],
      ['label:type:spc_t', /SELinux label/],
      ['disable', /SELinux label/],
      ['seccomp=unconfined', /turns off the seccomp filter/],
      ['Seccomp=unconfined', /turns off the seccomp filter/],
      ['no-new-privileges=maybe', /not a security option the gateway knows/],
      ['proc-opts=x', /not a security option the gateway knows/],
    ];
    for (const [opt, why] of refusedOpts) {
      refused(() => checkContainerCreate(hc(`{"SecurityOpt":["${opt}"]}`)), why);
      refused(() => checkContainerUpdate(body(`{"SecurityOpt":["${opt}"]}`)), why);
    }
    refused(() => checkContainerCreate(hc('{"SecurityOpt":"seccomp=unconfined"}')), /must be a list/);
  });
});

describe('Docker adapter: API versions', () => {
  it('serves 1.40 and later and unversioned paths; refuses older versions (below 1.24 start took a HostConfig)', () => {
    for (const v of [undefined, 'v1.40', 'v1.41', 'v1.47', 'v2.0']) checkApiVersion(v);
    for (const v of ['v1.23', 'v1.12', 'v1.39', 'v1.024', 'v0.99']) {
      assert.throws(() => checkApiVersion(v), (e: unknown) => e instanceof GatewayError && e.status === 400 && /oldest is 1\.40/.test(e.message), v);
    }
  });

  it("tells an engine's MinAPIVersion older than the gateway's (docker version shows the gateway's)", () => {
    for (const v of ['1.12', '1.39', '0.99']) assert.equal(olderThanServed(v), true, v);
    for (const v of ['1.40', '1.41', '2.0', '', 'x', undefined, 12]) assert.equal(olderThanServed(v), false, String(v));
  });
});

describe('Docker adapter: which requests need a write role', () => {
  it('listing, inspecting, logs and stats read; exec, cp out, export, attach and every change write', () => {
    const w = (method: string, path: string) => writes(matchEndpoint(method, path.split('/')), method);
    for (const [m, p] of [['GET', 'containers/json'], ['GET', 'containers/x/json'], ['GET', 'containers/x/logs'], ['GET', 'containers/x/stats'], ['GET', 'events'], ['GET', 'volumes'], ['HEAD', '_ping']]) {
      assert.equal(w(m as string, p as string), false, `${m} ${p}`);
    }
    for (const [m, p] of [['GET', 'containers/x/archive'], ['HEAD', 'containers/x/archive'], ['GET', 'containers/x/export'], ['POST', 'containers/x/exec'], ['POST', 'containers/x/attach'], ['DELETE', 'containers/x'], ['POST', 'containers/create'], ['PUT', 'containers/x/archive']]) {
      assert.equal(w(m as string, p as string), true, `${m} ${p}`);
    }
  });
});

describe('Docker adapter: which registries a pull may reach', () => {
  it('splits the registry from a reference as docker does', () => {
    assert.equal(registryOf('busybox'), 'docker.io');
    assert.equal(registryOf('library/busybox:1'), 'docker.io');
    assert.equal(registryOf('quay.io/a/b'), 'quay.io');
    assert.equal(registryOf('localhost/x'), 'localhost');
    assert.equal(registryOf('127.0.0.1:5000/x'), '127.0.0.1:5000');
    assert.equal(registryOf('Myhost/x'), 'Myhost');
  });

  it('refuses loopback, private, link-local and internal names when no allow-list is set', () => {
    for (const image of ['127.0.0.1:5000/v3/x', 'localhost:5000/x', 'localhost/x', '10.0.0.1/x', '192.168.1.1:80/x', '172.20.0.1/x', '169.254.169.254/latest',
      '[::1]:5000/x', '[fe80::1]/x', '[::ffff:127.0.0.1]:80/x', '0.0.0.0:80/x', '2130706433:80/x', '127.1:80/x', '0x7f.1/x', 'keystone:5000/x',
      'api.svc/x', 'reg.cluster.local/x', 'metadata.google.internal/x', 'a.localhost/x', 'Reg:80/x']) {
      assert.throws(() => checkPullSource(image, undefined), (e: unknown) => e instanceof GatewayError && e.status === 403 && /not allowed/.test(e.message), image);
    }
    for (const image of ['busybox', 'library/busybox', 'quay.io/a/b:1', 'registry.example.com:5000/x', '8.8.8.8/x']) checkPullSource(image, undefined);
  });

  it('with an allow-list, pulls only from the registries listed (docker.io for Docker Hub)', () => {
    checkPullSource('busybox', ['docker.io']);
    checkPullSource('registry.example.com:5000/x', ['registry.example.com:5000']);
    assert.throws(() => checkPullSource('quay.io/x', ['docker.io']), /allowed are docker\.io/);
    assert.throws(() => checkPullSource('busybox', []), /allowed are none/);
  });
});

describe('Docker adapter: the endpoint allow-list', () => {
  // What each served path's object is: ownership is checked on it before anything reaches the engine.
  const allowed: Array<[string, string, string | undefined]> = [
    ['GET', '_ping', undefined], ['HEAD', '_ping', undefined], ['GET', 'version', undefined], ['GET', 'info', undefined],
    ['GET', 'containers/json', undefined], ['POST', 'containers/create', undefined], ['GET', 'containers/x/json', 'container:x'],
    ['POST', 'containers/x/start', 'container:x'], ['POST', 'containers/x/attach', 'container:x'], ['GET', 'containers/x/logs', 'container:x'],
    ['PUT', 'containers/x/archive', 'container:x'], ['GET', 'containers/x/export', 'container:x'], ['DELETE', 'containers/x', 'container:x'],
    ['POST', 'exec/x/start', 'exec:x'], ['GET', 'exec/x/json', 'exec:x'], ['GET', 'images/json', undefined],
    ['GET', 'images/local/busybox:latest/json', undefined], ['POST', 'images/create', undefined], ['GET', 'volumes', undefined],
    ['GET', 'volumes/x', 'volume:x'], ['DELETE', 'volumes/x', 'volume:x'], ['GET', 'networks/x', 'network:x'],
    ['POST', 'networks/x/connect', 'network:x'], ['GET', 'events', undefined],
  ];
  for (const [method, path, object] of allowed) {
    it(`serves ${method} /${path}${object !== undefined ? `, checking that ${object} is the caller's` : ''}`, () => {
      const matched = matchEndpoint(method, path.split('/'));
      const named = matched.endpoint.object !== undefined && matched.id !== undefined ? `${matched.endpoint.object}:${matched.id}` : undefined;
      assert.equal(named, object);
    });
  }

  it("every served path with an object in it names the object's kind (so its ownership is checked)", () => {
    for (const endpoint of SERVED_ENDPOINTS) {
      if (endpoint.pattern.includes(':id')) assert.ok(endpoint.object !== undefined, `/${endpoint.pattern.join('/')} has an :id and no object kind`);
    }
  });
  const denied: Array<[string, string, RegExp]> = [
    ['POST', 'build', /builds run on the host: build the image elsewhere .*push it to a registry and `docker pull` it here/],
    ['POST', 'session', /host: build the image elsewhere/], ['POST', 'commit', /engine-wide/], ['GET', 'plugins', /host/],
    ['POST', 'swarm/init', /swarm/], ['GET', 'nodes', /swarm/], ['GET', 'services', /swarm/], ['GET', 'secrets', /swarm/], ['GET', 'system/df', /engine-wide/],
    ['GET', 'auth', /not an endpoint/], ['GET', 'distribution/x/json', /engine-wide/], ['POST', 'containers/prune', /prunes/], ['POST', 'images/load', /images are shared/],
    ['GET', 'images/get', /images are shared/], ['POST', 'images/x/push', /images are shared/], ['POST', 'images/x/tag', /images are shared/],
    ['DELETE', 'images/x', /images are shared/], ['POST', 'volumes/prune', /prunes/], ['POST', 'grpc', /host-level/], ['GET', 'containers/x/attach/ws', /not an endpoint/],
    ['PATCH', 'containers/x', /not an endpoint/], ['POST', 'plugins/pull', /host/],
    ['GET', 'tasks', /swarm/], ['GET', 'configs', /swarm/], ['POST', 'networks/prune', /prunes/], ['POST', 'images/prune', /prunes/],
    ['POST', 'build/prune', /builds run on the host|prunes/],
  ];
  it('answers a plugin inspect as not found (docker inspect probes it), not as forbidden', () => {
    assert.throws(() => matchEndpoint('GET', ['plugins', 'abc', 'json']), (e: unknown) => e instanceof GatewayError && e.status === 404 && /not found/.test(e.message));
  });

  for (const [method, path, why] of denied) {
    it(`refuses ${method} /${path} with 403 naming the reason`, () => {
      assert.throws(() => matchEndpoint(method, path.split('/')), (e: unknown) => e instanceof GatewayError && e.status === 403 && why.test(e.message));
    });
  }
});
