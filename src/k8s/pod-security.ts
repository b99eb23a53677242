import { z } from 'zod';
import type { PodSecurityLevel } from '../config/schema.js';

/**
 * The Kubernetes Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/), as
 * the gateway's admission webhook enforces them in tenant namespaces: `baseline` stops the known ways out of a pod
 * onto its node (host namespaces, privileged containers, hostPath, ...); `restricted` adds the hardening checks;
 * `privileged` checks nothing. The checks follow the standard's "latest" version. Pure: no I/O, no logging.
 */

export type { PodSecurityLevel };

/** One check of the standard that a pod fails: every offending field, and what to change. */
export interface Violation {
  /** The check's name as the standard calls it, e.g. "host namespaces". */
  readonly check: string;
  /** Each offending field with its path and value, e.g. `spec.hostNetwork=true`. */
  readonly fields: readonly string[];
  readonly fix: string;
}

const str = z.string().optional();
const bool = z.boolean().optional();
const seLinuxOptions = z.looseObject({ type: str, user: str, role: str, level: str });
const profile = z.looseObject({ type: z.string(), localhostProfile: str });
const windowsOptions = z.looseObject({ hostProcess: bool });

const containerSecurityContext = z.looseObject({
  privileged: bool,
  allowPrivilegeEscalation: bool,
  capabilities: z.looseObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
  procMount: str,
  seLinuxOptions: seLinuxOptions.optional(),
  seccompProfile: profile.optional(),
  appArmorProfile: profile.optional(),
  windowsOptions: windowsOptions.optional(),
  runAsNonRoot: bool,
  runAsUser: z.number().optional(),
});

const container = z.looseObject({
  name: z.string(),
  image: str,
  imagePullPolicy: str,
  volumeMounts: z.array(z.looseObject({ name: z.string(), subPath: str, subPathExpr: str })).optional(),
  ports: z.array(z.looseObject({ hostPort: z.number().optional() })).optional(),
  securityContext: containerSecurityContext.optional(),
});

const podSpec = z.looseObject({
  hostNetwork: bool,
  hostPID: bool,
  hostIPC: bool,
  securityContext: z
    .looseObject({
      seLinuxOptions: seLinuxOptions.optional(),
      seccompProfile: profile.optional(),
      appArmorProfile: profile.optional(),
      windowsOptions: windowsOptions.optional(),
      sysctls: z.array(z.looseObject({ name: z.string() })).optional(),
      runAsNonRoot: bool,
      runAsUser: z.number().optional(),
    })
    .optional(),
  volumes: z.array(z.looseObject({ name: z.string() })).optional(),
  containers: z.array(container).optional(),
  initContainers: z.array(container).optional(),
  ephemeralContainers: z.array(container).optional(),
});

/** The parts of a Pod the checks read; every other field passes through unread. */
export const podSchema = z.looseObject({
  metadata: z.looseObject({ name: str, generateName: str, annotations: z.record(z.string(), z.string()).optional() }).optional(),
  spec: podSpec,
});
export type Pod = z.infer<typeof podSchema>;
export type Container = z.infer<typeof container>;
type ContainerSecurity = z.infer<typeof containerSecurityContext>;

/** Capabilities a baseline pod may add (the standard's list). */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP',
  'SETUID', 'SYS_CHROOT',
]);
/** The "safe" sysctls: namespaced, and unable to affect other pods or the node. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fack',
  'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const CONFINED_PROFILE_TYPES = new Set(['RuntimeDefault', 'Localhost']);
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';
/** The pre-1.19 seccomp annotations, which kubelets up to 1.26 still honour when the field is unset. */
const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION = 'container.seccomp.security.alpha.kubernetes.io/';
/** Volume types a restricted pod may use: none of them reaches the node's filesystem or devices. */
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

export interface PlacedContainer {
  readonly path: string;
  readonly container: Container;
  readonly sc: ContainerSecurity;
}

/** Every container of the pod with the path of its entry: ordinary, init and ephemeral ones alike. */
export function containersOf(pod: Pod): PlacedContainer[] {
  const lists = [['containers', pod.spec.containers], ['initContainers', pod.spec.initContainers], ['ephemeralContainers', pod.spec.ephemeralContainers]] as const;
  return lists.flatMap(([key, list]) =>
    (list ?? []).map((c, i) => ({ path: `spec.${key}[${i}] "${c.name}"`, container: c, sc: c.securityContext ?? {} })),
  );
}

/** Collects the failing fields check by check, in the standard's order. */
class Findings {
  readonly violations: Violation[] = [];
  add(check: string, fields: readonly string[], fix: string): void {
    if (fields.length > 0) this.violations.push({ check, fields, fix });
  }
}

const quoted = (v: unknown): string => JSON.stringify(v);

function baseline(pod: Pod, found: Findings): void {
  const { spec } = pod;
  const podSc = spec.securityContext ?? {};
  const containers = containersOf(pod);
  const annotations = pod.metadata?.annotations ?? {};

  found.add(
    'hostProcess',
    [
      ...(podSc.windowsOptions?.hostProcess === true ? ['spec.securityContext.windowsOptions.hostProcess=true'] : []),
      ...containers.filter((c) => c.sc.windowsOptions?.hostProcess === true).map((c) => `${c.path} securityContext.windowsOptions.hostProcess=true`),
    ],
    'remove windowsOptions.hostProcess or set it to false',
  );
  found.add(
    'host namespaces',
    (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((k) => spec[k] === true).map((k) => `spec.${k}=true`),
    'remove hostNetwork, hostPID and hostIPC or set them to false (the pod gets its own network, process and IPC namespaces)',
  );
  found.add(
    'privileged',
    containers.filter((c) => c.sc.privileged === true).map((c) => `${c.path} securityContext.privileged=true`),
    'remove securityContext.privileged or set it to false',
  );
  found.add(
    'capabilities',
    containers.flatMap((c) => {
      const extra = (c.sc.capabilities?.add ?? []).filter((cap) => !BASELINE_CAPABILITIES.has(cap));
      return extra.length > 0 ? [`${c.path} securityContext.capabilities.add=${quoted(extra)}`] : [];
    }),
    `add only capabilities of the baseline set (${[...BASELINE_CAPABILITIES].join(', ')})`,
  );
  found.add(
    'hostPath volumes',
    (spec.volumes ?? []).flatMap((v, i) => ('hostPath' in v ? [`spec.volumes[${i}] "${v.name}" hostPath`] : [])),
    'use emptyDir, configMap, secret or a persistentVolumeClaim instead of hostPath',
  );
  found.add(
    'hostPort',
    containers.flatMap((c) =>
      (c.container.ports ?? []).flatMap((p, i) => (p.hostPort !== undefined && p.hostPort !== 0 ? [`${c.path} ports[${i}].hostPort=${p.hostPort}`] : [])),
    ),
    'remove hostPort (reach the pod through a Service, or kubectl port-forward)',
  );
  found.add(
    'AppArmor',
    [
      ...Object.entries(annotations)
        .filter(([k, v]) => k.startsWith(APPARMOR_ANNOTATION) && v !== 'runtime/default' && !v.startsWith('localhost/'))
        .map(([k, v]) => `metadata.annotations[${quoted(k)}]=${quoted(v)}`),
      ...(podSc.appArmorProfile !== undefined && !CONFINED_PROFILE_TYPES.has(podSc.appArmorProfile.type)
        ? [`spec.securityContext.appArmorProfile.type=${quoted(podSc.appArmorProfile.type)}`]
        : []),
      ...containers
        .filter((c) => c.sc.appArmorProfile !== undefined && !CONFINED_PROFILE_TYPES.has(c.sc.appArmorProfile.type))
        .map((c) => `${c.path} securityContext.appArmorProfile.type=${quoted(c.sc.appArmorProfile?.type)}`),
    ],
    'use the AppArmor profile runtime/default or a localhost/ one (appArmorProfile.type RuntimeDefault or Localhost), or set none',
  );
  const seLinux = (where: string, o: z.infer<typeof seLinuxOptions> | undefined): string[] => [
    ...(o?.type !== undefined && !SELINUX_TYPES.has(o.type) ? [`${where}.type=${quoted(o.type)}`] : []),
    ...(o?.user !== undefined && o.user !== '' ? [`${where}.user=${quoted(o.user)}`] : []),
    ...(o?.role !== undefined && o.role !== '' ? [`${where}.role=${quoted(o.role)}`] : []),
  ];
  found.add(
    'seLinuxOptions',
    [
      ...seLinux('spec.securityContext.seLinuxOptions', podSc.seLinuxOptions),
      ...containers.flatMap((c) => seLinux(`${c.path} securityContext.seLinuxOptions`, c.sc.seLinuxOptions)),
    ],
    'set no SELinux user or role, and a type only of container_t, container_init_t, container_kvm_t or container_engine_t',
  );
  found.add(
    'procMount',
    containers.filter((c) => c.sc.procMount !== undefined && c.sc.procMount !== 'Default').map((c) => `${c.path} securityContext.procMount=${quoted(c.sc.procMount)}`),
    'remove procMount or set it to Default',
  );
  found.add(
    'seccompProfile',
    [
      ...(podSc.seccompProfile?.type === 'Unconfined' ? ['spec.securityContext.seccompProfile.type="Unconfined"'] : []),
      ...containers.filter((c) => c.sc.seccompProfile?.type === 'Unconfined').map((c) => `${c.path} securityContext.seccompProfile.type="Unconfined"`),
      ...Object.entries(annotations)
        .filter(([k, v]) => (k === SECCOMP_POD_ANNOTATION || k.startsWith(SECCOMP_CONTAINER_ANNOTATION)) && v === 'unconfined')
        .map(([k, v]) => `metadata.annotations[${quoted(k)}]=${quoted(v)}`),
    ],
    'use seccompProfile.type RuntimeDefault or Localhost, or set none',
  );
  found.add(
    'sysctls',
    (podSc.sysctls ?? []).flatMap((s, i) => (SAFE_SYSCTLS.has(s.name) ? [] : [`spec.securityContext.sysctls[${i}].name=${quoted(s.name)}`])),
    `set only the safe sysctls (${[...SAFE_SYSCTLS].join(', ')})`,
  );
}

function restricted(pod: Pod, found: Findings): void {
  const podSc = pod.spec.securityContext ?? {};
  const containers = containersOf(pod);

  found.add(
    'volume types',
    (pod.spec.volumes ?? []).flatMap((v, i) => {
      const kinds = Object.keys(v).filter((k) => k !== 'name' && !RESTRICTED_VOLUMES.has(k));
      return kinds.length > 0 ? [`spec.volumes[${i}] "${v.name}" ${kinds.join(', ')}`] : [];
    }),
    `use only ${[...RESTRICTED_VOLUMES].join(', ')} volumes`,
  );
  found.add(
    'allowPrivilegeEscalation != false',
    containers.filter((c) => c.sc.allowPrivilegeEscalation !== false).map((c) => `${c.path} securityContext.allowPrivilegeEscalation=${quoted(c.sc.allowPrivilegeEscalation ?? 'unset')}`),
    'set securityContext.allowPrivilegeEscalation=false in every container',
  );
  found.add(
    'runAsNonRoot != true',
    [
      ...(podSc.runAsNonRoot === false ? ['spec.securityContext.runAsNonRoot=false'] : []),
      ...containers
        .filter((c) => c.sc.runAsNonRoot === false || (c.sc.runAsNonRoot === undefined && podSc.runAsNonRoot !== true))
        .map((c) => `${c.path} securityContext.runAsNonRoot=${quoted(c.sc.runAsNonRoot ?? 'unset')}`),
    ],
    'set securityContext.runAsNonRoot=true in the pod (or in every container)',
  );
  found.add(
    'runAsUser=0',
    [
      ...(podSc.runAsUser === 0 ? ['spec.securityContext.runAsUser=0'] : []),
      ...containers.filter((c) => c.sc.runAsUser === 0).map((c) => `${c.path} securityContext.runAsUser=0`),
    ],
    'run as a non-zero user id',
  );
  const podSeccomp = podSc.seccompProfile !== undefined && CONFINED_PROFILE_TYPES.has(podSc.seccompProfile.type);
  found.add(
    'seccompProfile (restricted)',
    podSeccomp
      ? []
      : containers.filter((c) => c.sc.seccompProfile === undefined).map((c) => `${c.path} securityContext.seccompProfile unset`),
    'set securityContext.seccompProfile.type to RuntimeDefault or Localhost in the pod (or in every container)',
  );
  found.add(
    'unrestricted capabilities',
    containers.flatMap((c) => {
      const drop = c.sc.capabilities?.drop ?? [];
      const add = (c.sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
      return [
        ...(drop.includes('ALL') ? [] : [`${c.path} securityContext.capabilities.drop does not include "ALL"`]),
        ...(add.length > 0 ? [`${c.path} securityContext.capabilities.add=${quoted(add)}`] : []),
      ];
    }),
    'set securityContext.capabilities.drop=["ALL"] in every container and add at most NET_BIND_SERVICE',
  );
}

/** What the pod breaks at this level, check by check; empty when it may run. */
export function podSecurityViolations(pod: Pod, level: PodSecurityLevel): Violation[] {
  const found = new Findings();
  if (level === 'privileged') return found.violations;
  baseline(pod, found);
  if (level === 'restricted') restricted(pod, found);
  return found.violations;
}

/** One message in the manner of the apiserver's own PodSecurity admission: every failing field and what to do. */
export function describeViolations(podName: string, level: PodSecurityLevel, violations: readonly Violation[]): string {
  const checks = violations.map((v) => `${v.check} (${v.fields.join(', ')}: ${v.fix})`);
  return `pod ${quoted(podName)} violates PodSecurity ${quoted(`${level}:latest`)} of this cluster's tenant namespaces: ${checks.join('; ')}`;
}
