import { readConfiguredFile } from '../config/files.js';
import type { DockerConfig } from '../config/schema.js';
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

const MAX_ENGINE_JSON = 16 * 1024 * 1024;

/** A small JSON call of the adapter's own (inspect, count): never for tenant data streams. */
export function engineJson(upstream: Upstream, method: string, path: string, body?: unknown): Promise<EngineAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers = ['Host', upstream.hostHeader, 'Accept', 'application/json'];
  if (payload !== undefined) headers.push('Content-Type', 'application/json', 'Content-Length', String(payload.length));
  return new Promise((resolve, reject) => {
    const req = upstream.request({ ...upstream.requestOptions(method, path, headers, false), timeout: 30_000 });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ENGINE_JSON) req.destroy(new Error('engine answer too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text.length > 0 ? JSON.parse(text) : undefined;
        } catch {
          /* plain text answer */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('the Docker engine did not answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}
