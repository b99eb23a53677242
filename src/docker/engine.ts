import { readConfiguredFile } from '../config/files.js';
import type { DockerConfig } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import { upstreamFailure } from '../proxy/errors.js';
import { Upstream } from '../proxy/upstream.js';

/** The Docker engine the adapter forwards to: its unix socket or TCP (optionally TLS) address. */
export function engineUpstream(config: DockerConfig): Upstream {
  const options = { responseHeaderTimeoutMs: config.responseHeaderTimeoutSeconds * 1000 };
  if (config.host.startsWith('unix://')) return new Upstream('http://docker', undefined, config.host.slice('unix://'.length), options);
  const tls = config.tls;
  const scheme = tls !== undefined ? 'https' : 'http';
  return new Upstream(`${scheme}://${config.host.slice('tcp://'.length)}`, {
    ca: tls?.caFile !== undefined ? readConfiguredFile('docker.tls.caFile', tls.caFile) : undefined,
    cert: tls?.certFile !== undefined ? readConfiguredFile('docker.tls.certFile', tls.certFile) : undefined,
    key: tls?.keyFile !== undefined ? readConfiguredFile('docker.tls.keyFile', tls.keyFile) : undefined,
    rejectUnauthorized: true,
  }, undefined, options);
}

export interface EngineAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** How long one of the adapter's own calls may take (an inspect, a count, a network create). */
const ENGINE_CALL_MS = 30_000;

/**
 * A small JSON call of the adapter's own (inspect, count, a checked create), never for tenant data streams: undici's
 * request on the upstream's pool for own calls, which bounds the answer's size. A body that is not JSON comes back as
 * its text. `body` is sent as JSON, or as it is when it is already serialized (a Buffer); `timeoutMs` replaces the
 * usual limit (0: none), for calls that stand in for a tenant's own request.
 */
export async function engineJson(upstream: Upstream, method: string, path: string, body?: unknown, timeoutMs = ENGINE_CALL_MS): Promise<EngineAnswer> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const res = await upstream.calls
    .request({
      method: method as 'GET',
      path: upstream.basePath + path,
      headers: { host: upstream.hostHeader, accept: 'application/json', ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(payload !== undefined ? { body: payload } : {}),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    .catch((err: unknown) => {
      throw engineUnreachable(err, timeoutMs);
    });
  const text = await res.body.text().catch((err: unknown) => {
    throw engineUnreachable(err, timeoutMs);
  });
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    /* a plain text answer */
  }
  return { status: res.statusCode, body: parsed };
}

/** The engine could not be asked: the same 502 or 504 (and words) as a forwarded request that failed. */
function engineUnreachable(err: unknown, timeoutMs: number): GatewayError {
  return upstreamFailure(err, timeoutMs);
}
