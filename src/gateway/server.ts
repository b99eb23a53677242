import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../errors.js';
import { rawJsonAnswer } from '../proxy/raw-response.js';
import type { GatewayConfig } from '../config/schema.js';
import { boundFirstRequest } from './connection-bounds.js';
import { tlsServerOptions } from './tls.js';

export type GatewayServer = http.Server | https.Server;

/**
 * A connection that has not finished its TLS handshake by then is closed. Node's default, 120 s, let anyone hold a
 * descriptor for two minutes per connection without sending a byte (about 170 connections a second kept the
 * gateway at its descriptor limit); kubectl and docker finish a handshake in milliseconds.
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * TCP keepalive on every accepted connection, after this long without traffic. Upgraded sessions (exec, attach,
 * port-forward, docker attach) and watches have no timeout, so a client that vanishes without closing (a laptop
 * suspended, a VPN or NAT dropping the flow) was held forever, with its upstream connection and, for exec, the
 * session on the node. The kube-apiserver and dockerd set keepalive on their own connections; so does kubectl.
 */
const TCP_KEEPALIVE_INITIAL_DELAY_MS = 30_000;

/**
 * The listener. Timeouts bound how long a client may take to send its headers, never how long a response may
 * stream: watches, `logs -f` and upgraded sessions live as long as both ends want (invariants.md 11).
 */
export function createListener(config: GatewayConfig['listen'], tlsHandshakeTimeoutMs = TLS_HANDSHAKE_TIMEOUT_MS): GatewayServer {
  const headersTimeout = config.headersTimeoutSeconds * 1000;
  const common: http.ServerOptions = {
    requestTimeout: 0,
    headersTimeout,
    // Node checks the headers timeout of open connections this often (30 s by default, which let a slow head live
    // almost twice its timeout).
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
    keepAliveTimeout: config.idleTimeoutSeconds * 1000,
    maxHeaderSize: 16 * 1024,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: TCP_KEEPALIVE_INITIAL_DELAY_MS,
  };
  const bounds = { firstByteMs: config.firstByteTimeoutSeconds * 1000, firstHeadMs: headersTimeout };
  if (config.tls === undefined) {
    const server = http.createServer(common);
    boundFirstRequest(server, bounds, false);
    return server;
  }
  const options = { ...common, handshakeTimeout: tlsHandshakeTimeoutMs, ...tlsServerOptions(config.tls) } as https.ServerOptions;
  try {
    const server = https.createServer(options);
    server.on('tlsClientError', answerPlainHttp);
    boundFirstRequest(server, bounds, true);
    return server;
  } catch (err) {
    // OpenSSL's own words ("key values mismatch", "no start line"), with which files they are about.
    throw new GatewayError('config_invalid', `listen.tls: certFile and keyFile are not a usable PEM certificate and its key (${(err as Error).message})`);
  }
}

const PLAIN_HTTP_ANSWER = rawJsonAnswer(
  400,
  'this port speaks HTTPS: use https://<gateway>/k8s in the kubeconfig, and DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH (holding the CA as ca.pem) for docker',
);

/**
 * Plain HTTP sent to the TLS port (`http://` in a kubeconfig, docker without DOCKER_TLS_VERIFY) got only a closed
 * connection ("EOF"). OpenSSL recognizes an HTTP request where a handshake should be: it is answered in plain HTTP,
 * as Go's servers do, on the connection under the TLS socket. Other handshake failures just close.
 */
function answerPlainHttp(err: Error & { code?: string }, socket: TLSSocket): void {
  const raw = (socket as TLSSocket & { _parent?: unknown })._parent;
  if (err.code === 'ERR_SSL_HTTP_REQUEST' && raw instanceof net.Socket && !raw.destroyed && raw.writable) raw.end(PLAIN_HTTP_ANSWER);
  else socket.destroy();
}
