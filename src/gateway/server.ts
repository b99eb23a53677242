import http from 'node:http';
import https from 'node:https';
import { ConfigError } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { tlsServerOptions } from './tls.js';

export type GatewayServer = http.Server | https.Server;

/**
 * The listener. Timeouts bound how long a client may take to send its headers, never how long a response may
 * stream: watches, `logs -f` and upgraded sessions live as long as both ends want (invariants.md 11).
 */
export function createListener(config: GatewayConfig['listen']): GatewayServer {
  const common: http.ServerOptions = {
    requestTimeout: 0,
    headersTimeout: 30_000,
    keepAliveTimeout: 65_000,
    maxHeaderSize: 16 * 1024,
    noDelay: true,
  };
  if (config.tls === undefined) return http.createServer(common);
  const options = { ...common, ...tlsServerOptions(config.tls) } as https.ServerOptions;
  try {
    return https.createServer(options);
  } catch (err) {
    // OpenSSL's own words ("key values mismatch", "no start line"), with which files they are about.
    throw new ConfigError(`listen.tls: certFile and keyFile are not a usable PEM certificate and its key (${(err as Error).message})`);
  }
}
