import { containersOf, type Pod } from './pod-security.js';

/**
 * CVE-2021-25741: a container can swap a symbolic link into a volume while the kubelet prepares a `subPath` (or
 * `subPathExpr`) mount of it, and the kubelet then mounts the link's target: any path of the node, as root. The Pod
 * Security Standards do not restrict subPath, so on a vulnerable cluster the gateway's webhook refuses it. The bug and
 * its fix are in the kubelet; the gateway sees the apiserver's version (GET /version with its own credentials, which
 * every authenticated client may read), and the operator can override the verdict (`k8s.tenancy.subPath`). Pure.
 */

export const CVE = 'CVE-2021-25741';
/** The first fixed patch release of each affected minor version; every release from 1.23.0 on is fixed. */
const FIXED: Readonly<Record<number, number>> = { 19: 15, 20: 11, 21: 5, 22: 2 };
const FIRST_FIXED_MINOR = 23;
export const FIXED_VERSIONS = '1.19.15, 1.20.11, 1.21.5, 1.22.2 (and every release from 1.23)';

export interface KubeVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** alpha, beta or rc: built before the release of that number, so possibly before its fix. */
  readonly prerelease: boolean;
}

/**
 * A Kubernetes gitVersion: `v1.20.2`, `v1.21.5-gke.1`, `v1.19.16+k3s1`, `v1.22.2-eks-6d3986b`, `v1.23.0-rc.1`.
 * A suffix after `-` that is not alpha/beta/rc is a vendor's build of that release; build metadata (`+...`) is ignored.
 */
export function parseKubeVersion(text: string): KubeVersion | undefined {
  const m = /^v?(\d{1,4})\.(\d{1,4})\.(\d{1,6})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(text.trim());
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: /^(alpha|beta|rc)([.-]|\d|$)/i.test(m[4] ?? '') };
}

/** Whether kubelets of this version have the bug (releases before 1.19 never got the fix). */
export function subPathVulnerable(v: KubeVersion): boolean {
  if (v.major !== 1) return v.major < 1;
  const fixedPatch = v.minor >= FIRST_FIXED_MINOR ? (v.minor === FIRST_FIXED_MINOR ? 0 : -1) : FIXED[v.minor];
  if (fixedPatch === undefined) return true;
  return v.patch < fixedPatch || (v.patch === fixedPatch && v.prerelease);
}

/** What the gateway knows of the apiserver's version. */
export type ApiserverVersion = { readonly known: true; readonly gitVersion: string } | { readonly known: false; readonly why: string };

/** `k8s.tenancy.subPath`: decide by the apiserver's version, or the operator's word either way. */
export type SubPathSetting = 'auto' | 'refuse' | 'allow';

export type SubPathRule = { readonly refuse: false } | { readonly refuse: true; readonly because: string };

/**
 * Whether pods may mount with subPath now. Fail closed: a version the gateway has not read (yet), or cannot parse, is
 * treated as vulnerable; the operator of a cluster whose kubelets are known to be fixed says `allow`.
 */
export function subPathRule(setting: SubPathSetting, version: ApiserverVersion): SubPathRule {
  if (setting === 'allow') return { refuse: false };
  if (setting === 'refuse') return { refuse: true, because: `the operator refuses them (k8s.tenancy.subPath: refuse; ${CVE}, fixed in kubelets ${FIXED_VERSIONS})` };
  if (!version.known) {
    return {
      refuse: true,
      because: `the gateway does not know this cluster's Kubernetes version (${version.why}), so it assumes ${CVE} (fixed in ${FIXED_VERSIONS})`,
    };
  }
  const parsed = parseKubeVersion(version.gitVersion);
  if (parsed === undefined) {
    return { refuse: true, because: `this cluster's version ${JSON.stringify(version.gitVersion)} is not one the gateway can read, so it assumes ${CVE} (fixed in ${FIXED_VERSIONS})` };
  }
  if (!subPathVulnerable(parsed)) return { refuse: false };
  return { refuse: true, because: `this cluster runs Kubernetes ${version.gitVersion}, which is affected by ${CVE} (fixed in ${FIXED_VERSIONS})` };
}

/** Every volumeMount of every container that uses subPath or subPathExpr, as `<container> volumeMounts[i].subPath="x"`. */
export function subPathMounts(pod: Pod): string[] {
  return containersOf(pod).flatMap((c) =>
    (c.container.volumeMounts ?? []).flatMap((m, i) => [
      ...(m.subPath !== undefined && m.subPath !== '' ? [`${c.path} volumeMounts[${i}].subPath=${JSON.stringify(m.subPath)}`] : []),
      ...(m.subPathExpr !== undefined && m.subPathExpr !== '' ? [`${c.path} volumeMounts[${i}].subPathExpr=${JSON.stringify(m.subPathExpr)}`] : []),
    ]),
  );
}

export function describeSubPathMounts(podName: string, mounts: readonly string[], because: string): string {
  return (
    `pod ${JSON.stringify(podName)} mounts volumes with subPath (${mounts.join(', ')}), which this cluster's project namespaces refuse: ${because}; ` +
    'through a subPath a container can reach any file of the node. Mount the whole volume instead, or ask the operator to upgrade the ' +
    "cluster's nodes to a fixed version"
  );
}
