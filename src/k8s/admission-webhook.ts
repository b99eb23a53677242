import type { ImpersonationConfig, K8sConfig, PodSecurityLevel, TenancyConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { AdmissionDecision } from './admission-review.js';
import { ApiserverVersionWatch, apiserverVersionReader } from './apiserver-version.js';
import { SharedImages, reviewImagePull } from './image-pull-policy.js';
import { NamespaceProjects } from './namespace-projects.js';
import { namespaceToLookUp, reviewPodAdmission, type AdmissionPolicy } from './pod-admission.js';
import { outsideGroupsOf, type NamespaceProject } from './rolebinding-review.js';
import { subPathRule, type ApiserverVersion } from './subpath.js';
import { tenancyApis } from './tenancy.js';
import { loadKubeConfig } from './upstream.js';

/**
 * The gateway's admission webhooks for project namespaces, with what their decisions need from outside: the
 * apiserver's version (subPath rule) and a namespace's owning project (RoleBinding rule). The decisions themselves are
 * pure (pod-admission.ts, image-pull-policy.ts).
 */
export interface AdmissionWebhook {
  readonly podSecurityLevel: PodSecurityLevel;
  /** The validating webhook: pods, Services, RoleBindings. */
  validate(body: unknown): Promise<AdmissionDecision>;
  /** The mutating webhook: imagePullPolicy Always on pods' containers (alwaysPullImages). */
  mutate(body: unknown): AdmissionDecision;
  stop(): void;
}

export interface AdmissionFacts {
  readonly version: () => ApiserverVersion;
  readonly projectOf: (namespace: string) => Promise<NamespaceProject>;
}

export function admissionWebhook(tenancy: TenancyConfig, impersonation: ImpersonationConfig, facts: AdmissionFacts, stop: () => void = () => undefined): AdmissionWebhook {
  const alwaysPull = tenancy.alwaysPullImages ? new SharedImages(tenancy.sharedImages) : undefined;
  const bindings = { groupPrefix: impersonation.groupPrefix, allowed: tenancy.bindingSubjects, outsideGroups: outsideGroupsOf(impersonation) };
  const policy = (): AdmissionPolicy => ({ level: tenancy.podSecurity.level, alwaysPull, bindings, subPath: subPathRule(tenancy.subPath, facts.version()) });
  return {
    podSecurityLevel: tenancy.podSecurity.level,
    validate: async (body) => {
      const namespace = namespaceToLookUp(body, impersonation.groupPrefix);
      const project = namespace === undefined ? undefined : await facts.projectOf(namespace);
      return reviewPodAdmission(body, policy(), project);
    },
    mutate: (body) => reviewImagePull(body, alwaysPull),
    stop,
  };
}

/** A cluster's webhooks: each cluster calls its own paths, so that the facts (version, namespace owner) are its own. */
export interface ClusterAdmissionWebhook {
  readonly cluster: string;
  readonly webhook: AdmissionWebhook;
}

/**
 * The webhooks of every cluster with tenancy, with the real facts of that cluster (its apiserver's /version read now
 * and every 10 minutes, its namespaces read on demand with the gateway's own credentials there); none without
 * `k8s.tenancy` (no project namespaces to guard).
 */
export function startAdmissionWebhooks(k8s: K8sConfig, logger: Logger): ClusterAdmissionWebhook[] {
  const { tenancy, impersonation } = k8s;
  if (tenancy === undefined) return [];
  if (!tenancy.alwaysPullImages) {
    logger.warn(
      "k8s.tenancy.alwaysPullImages is false: pods in project namespaces may run images from a node's cache, so a private image one project pulled " +
        'with its credentials runs for any other project that names it (imagePullPolicy IfNotPresent or Never) without credentials',
    );
  }
  if (tenancy.subPath !== 'auto') logger.warn({ subPath: tenancy.subPath }, `k8s.tenancy.subPath is ${tenancy.subPath}: volumeMounts subPath is ${tenancy.subPath === 'allow' ? 'allowed whatever the cluster version (CVE-2021-25741 needs fixed kubelets on every node)' : 'refused in project namespaces'}`);
  return k8s.clusters.flatMap((cluster) => {
    if (cluster.tenancy === undefined) return [];
    const kc = loadKubeConfig(cluster);
    const version = new ApiserverVersionWatch(apiserverVersionReader(kc), logger.child({ cluster: cluster.name }));
    if (cluster.tenancy.subPath === 'auto') version.start();
    const log = logger.child({ cluster: cluster.name });
    const projects = new NamespaceProjects(tenancyApis(kc), undefined, undefined, (err) => log.warn({ err }, 'the RoleBinding review could not read a namespace'));
    const facts = { version: () => version.current(), projectOf: (ns: string) => projects.projectOf(ns) };
    return [{ cluster: cluster.name, webhook: admissionWebhook(cluster.tenancy, impersonation, facts, () => version.stop()) }];
  });
}
