import type https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { K8sClusterConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { Upstream } from '../proxy/upstream.js';

/** The apiserver and the gateway's own credentials for it, from a kubeconfig or the in-cluster service account. */
export interface K8sUpstream {
  readonly upstream: Upstream;
  readonly server: string;
  /** The gateway's own kubeconfig, for the few API calls it makes itself (tenant provisioning). */
  readonly kubeConfig: KubeConfig;
  /** The gateway's own Authorization header value, when it authenticates with a token (client certs live in the agent). */
  authorization(): string | undefined;
  close(): void;
}

/** In-cluster service account tokens rotate; re-read credentials this often. */
const CREDENTIAL_REFRESH_MS = 60_000;

/** The kubeconfig cannot be used: the gateway does not start (main.ts exits with 2, as for a bad configuration). */
const unusable = (message: string): GatewayError => new GatewayError('config_invalid', message);

export function loadKubeConfig(config: K8sClusterConfig): KubeConfig {
  const key = config.configKey;
  const kc = new KubeConfig();
  try {
    if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig);
    else kc.loadFromCluster();
    if (config.context !== undefined) kc.setCurrentContext(config.context);
  } catch (err) {
    const where = config.kubeconfig ?? 'the in-cluster service account';
    throw unusable(`${key}.kubeconfig: cannot load ${where}: ${(err as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    throw unusable(
      `${key}: the kubeconfig has no cluster for context '${kc.getCurrentContext()}'; set ${key}.context to one of: ${kc.getContexts().map((c) => c.name).join(', ')}`,
    );
  }
  return kc;
}

async function httpsOptions(kc: KubeConfig): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

/** The first read of the gateway's credentials, with what is wrong said in the configuration's words. */
async function firstHttpsOptions(kc: KubeConfig, server: string, where: string, key: string): Promise<https.RequestOptions> {
  try {
    return await httpsOptions(kc);
  } catch (err) {
    if (server.startsWith('http://')) {
      throw unusable(
        `${key}.kubeconfig: the cluster's server ${server} (in ${where}) is plain http://: the gateway sends its own credentials and every tenant's identity to the apiserver, so it talks to it over https:// only; set the server to the apiserver's https:// address`,
      );
    }
    throw unusable(`${key}.kubeconfig: cannot use the credentials in ${where}: ${(err as Error).message}`);
  }
}

function authorizationFrom(opts: https.RequestOptions): string | undefined {
  const headers = opts.headers as Record<string, unknown> | undefined;
  const value = headers?.Authorization ?? headers?.authorization;
  return typeof value === 'string' ? value : undefined;
}

export async function loadK8sUpstream(config: K8sClusterConfig): Promise<K8sUpstream> {
  const kc = loadKubeConfig(config);
  const cluster = kc.getCurrentCluster() as NonNullable<ReturnType<KubeConfig['getCurrentCluster']>>;
  const opts = await firstHttpsOptions(kc, cluster.server, config.kubeconfig ?? 'the in-cluster service account', config.configKey);
  if (opts.auth !== undefined) {
    throw unusable(`${config.configKey}.kubeconfig: basic-auth users are not supported; use a token or a client certificate`);
  }
  const upstream = new Upstream(cluster.server, {
    ca: opts.ca as string | Buffer | undefined,
    cert: opts.cert as string | Buffer | undefined,
    key: opts.key as string | Buffer | undefined,
    rejectUnauthorized: opts.rejectUnauthorized ?? true,
    servername: opts.servername,
  }, undefined, { http2LongLived: config.http2Watches, http2Requests: config.http2Requests, responseHeaderTimeoutMs: config.responseHeaderTimeoutSeconds * 1000 });
  let authorization = authorizationFrom(opts);
  const refresh = setInterval(() => {
    httpsOptions(kc)
      .then((fresh) => {
        authorization = authorizationFrom(fresh) ?? authorization;
      })
      .catch(() => {
        /* keep the last good credentials; readiness reports upstream trouble */
      });
  }, CREDENTIAL_REFRESH_MS);
  refresh.unref();
  return {
    upstream,
    server: cluster.server,
    kubeConfig: kc,
    authorization: () => authorization,
    close: () => {
      clearInterval(refresh);
      upstream.close();
    },
  };
}
