import { isCertificateRefusal, systemCode } from '../errors.js';
import type { K8sUpstream } from './upstream.js';

/** How long the readiness check waits for the apiserver's /healthz (the chart's probe allows 3 s for all checks). */
const HEALTH_TIMEOUT_MS = 3000;

export interface ApiserverHealth {
  readonly ok: boolean;
  readonly detail: string;
  /** The gateway's own credentials or CA are refused: its configuration, not an outage. */
  readonly blocking?: boolean;
}

/** GET /healthz with the gateway's own credentials: the apiserver answers, and accepts the gateway. */
export async function apiserverHealth(k8s: K8sUpstream, configKey = 'k8s'): Promise<ApiserverHealth> {
  const auth = k8s.authorization();
  try {
    const res = await k8s.upstream.calls.request({
      method: 'GET',
      path: `${k8s.upstream.basePath}/healthz`,
      headers: { host: k8s.upstream.hostHeader, ...(auth !== undefined ? { authorization: auth } : {}) },
      headersTimeout: HEALTH_TIMEOUT_MS,
      bodyTimeout: HEALTH_TIMEOUT_MS,
    });
    await res.body.dump();
    const ok = res.statusCode === 200;
    const refused = res.statusCode === 401 || res.statusCode === 403;
    return {
      ok,
      detail: ok ? 'apiserver healthy' : `apiserver answered HTTP ${res.statusCode}${refused ? ` to the gateway's own credentials (${configKey}.kubeconfig)` : ''}`,
      ...(refused ? { blocking: true } : {}),
    };
  } catch (err) {
    const code = systemCode(err);
    const why = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : code !== '' ? code : (err as Error).message;
    return { ok: false, detail: `apiserver unreachable (${why})`, ...(isCertificateRefusal(err) ? { blocking: true } : {}) };
  }
}
