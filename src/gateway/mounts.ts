import type { ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import { engineUpstream } from '../docker/engine.js';
import { loadK8sClusters } from '../k8s/clusters.js';
import type { Logger } from '../observability/logger.js';
import { DOCKER_SIGNPOST, dockerSteps } from '../routes/docker.js';
import { K8S_SIGNPOST, k8sSteps } from '../routes/k8s.js';
import type { CoeMount, Signpost } from '../routes/mount.js';
import { mountOf, type PipelineContext } from '../routes/pipeline.js';
import { POD_ADMISSION_PATH, clusterAdmissionPaths } from '../routes/pod-admission.js';
import { ProjectRateLimiter } from '../routes/rate-limit.js';

export interface MountDependencies extends PipelineContext {
  /** Told of every watch about to be forwarded (shutdown ends watches at once). */
  readonly onWatch: (res: ServerResponse) => void;
  /** The rate limits' clock (tests move it); performance.now by default. */
  readonly now?: () => number;
}

/** Every COE this gateway knows, served or not. */
export const SIGNPOSTS: readonly Signpost[] = [K8S_SIGNPOST, DOCKER_SIGNPOST];

/** The COE mounts the configuration asks for, in the order they are matched: /k8s, then /docker. */
export async function coeMounts(config: GatewayConfig, deps: MountDependencies): Promise<CoeMount[]> {
  const { logger, metrics } = deps;
  const mounts: CoeMount[] = [];
  if (config.k8s !== undefined) {
    const { impersonation, rateLimit } = config.k8s;
    const clusters = await loadK8sClusters(config.k8s, {
      impersonation,
      logger,
      onProvision: (cluster, action, outcome) => metrics.provisioning.inc({ action, outcome, cluster }),
    });
    for (const c of clusters.all) {
      metrics.registerCluster(c.name);
      const { server, upstream } = c.apiserver;
      logger.info({ cluster: c.name, server, http2Watches: upstream.http2 !== undefined, ...(c.projectTags !== undefined ? { projectTags: c.projectTags } : {}) }, 'kubernetes cluster loaded');
    }
    const sessions = clusters.all.flatMap((c) => c.apiserver.upstream.http2 ?? []);
    if (sessions.length > 0) metrics.observeHttp2('k8s', () => sessions.flatMap((s) => s.connections));
    const steps = k8sSteps({
      clusters,
      impersonation,
      authUrl: config.keystone.authUrl,
      onWatch: deps.onWatch,
      ...(rateLimit !== undefined ? { rateLimiter: new ProjectRateLimiter('k8s', rateLimit, metrics, deps.now) } : {}),
    });
    mounts.push(mountOf(steps, deps));
    announcePodSecurity(config, logger);
  }
  if (config.docker !== undefined) {
    const { rateLimit } = config.docker;
    const engine = engineUpstream(config.docker);
    const steps = dockerSteps({
      engine,
      config: config.docker,
      authUrl: config.keystone.authUrl,
      ...(rateLimit !== undefined ? { rateLimiter: new ProjectRateLimiter('docker', rateLimit, metrics, deps.now) } : {}),
    });
    mounts.push(mountOf(steps, deps));
    logger.info({ host: config.docker.host }, 'docker engine configured');

  }
  return mounts;
}

/** What pod security means on this gateway, said once at start: serving the webhook checks nothing by itself. */
function announcePodSecurity(config: GatewayConfig, logger: Logger): void {
  const level = config.k8s?.tenancy?.podSecurity.level;
  const clusters = config.k8s?.clusters ?? [];
  if (level === 'privileged') {
    logger.warn(
      'k8s.tenancy.podSecurity.level is privileged: pods in project namespaces are not checked, and any tenant who may create pods can take over the node they run on',
    );
  } else if (level !== undefined) {
    // A gateway run without the Helm chart let a privileged pod in.
    logger.info(
      { podSecurityLevel: level, webhook: POD_ADMISSION_PATH, ...(clusters.length > 1 ? { clusterWebhooks: clusters.map((c) => clusterAdmissionPaths(c.name).pods) } : {}) },
      "pod security: pods in project namespaces are checked only when the apiserver calls this gateway's webhook (the Helm chart registers it when tls.secretName is set; without the chart see the README, \"Pods without the Helm chart\"); clusters from 1.23 also enforce the namespaces' pod-security labels themselves; each review is logged as 'pod admitted' or 'pod refused by pod security'",
    );
  }
}
