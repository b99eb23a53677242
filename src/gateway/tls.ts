import type https from 'node:https';
import tls from 'node:tls';
import { readConfiguredFile } from '../config/files.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { isAdmissionPath } from '../routes/pod-admission.js';

export type TlsConfig = NonNullable<GatewayConfig['listen']['tls']>;

/** TLS 1.2 is the floor: kubectl, docker and every supported client speak it; older versions are broken. */
const MIN_TLS_VERSION = 'TLSv1.2';

/** The certificate, key and client CA as one secure context's options, read from the configured files. */
function readTlsMaterial(config: TlsConfig): tls.SecureContextOptions {
  return {
    cert: readConfiguredFile('listen.tls.certFile', config.certFile),
    key: readConfiguredFile('listen.tls.keyFile', config.keyFile),
    ...(config.clientCaFile !== undefined ? { ca: readConfiguredFile('listen.tls.clientCaFile', config.clientCaFile) } : {}),
    minVersion: MIN_TLS_VERSION,
  };
}

/**
 * The server options for the listener. With a client CA every client is asked for a certificate, but the handshake
 * does not fail without one: the gateway refuses such requests itself (`clientCertificateRefusal`) with a message
 * saying what is missing, and health probes, which carry no certificate, keep working.
 */
export function tlsServerOptions(config: TlsConfig): https.ServerOptions {
  return {
    ...readTlsMaterial(config),
    ...(config.clientCaFile !== undefined ? { requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/**
 * Paths served without a client certificate under mutual TLS: the kubelet's probes present none, and neither does
 * the apiserver calling the admission webhook unless its AdmissionConfiguration gives it one (docs/security.md).
 */
const WITHOUT_CLIENT_CERTIFICATE = new Set(['/healthz', '/readyz']);

/**
 * Under mutual TLS: why this request may not go on (no certificate, or one the client CA did not sign), or undefined
 * when it may. Checked for every request and upgrade before anything else.
 */
export function clientCertificateRefusal(socket: unknown, url: string | undefined): string | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  if (socket.authorized) return undefined;
  const path = (url ?? '').split('?')[0] as string;
  if (WITHOUT_CLIENT_CERTIFICATE.has(path) || isAdmissionPath(path)) return undefined;
  const peer = socket.getPeerCertificate();
  return peer === null || Object.keys(peer).length === 0
    ? 'this gateway requires a client certificate (mutual TLS): configure one in your client (kubectl: client-certificate/client-key in the kubeconfig user; docker: --tlscert/--tlskey)'
    : `the client certificate is not accepted (${verifyFailure(socket.authorizationError as unknown)}); use a valid certificate signed by the gateway's client CA`;
}

/** OpenSSL's verification errors a client is most likely to meet, in words. */
const VERIFY_FAILURES: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'not signed by the configured client CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'not signed by the configured client CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed, not signed by the configured client CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'not signed by the configured client CA',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify',
};

/**
 * Why the client certificate failed verification. Node gives OpenSSL's code as a string here (`CERT_HAS_EXPIRED`),
 * not the Error its type declares: read as an Error, every failure was reported as "not signed by the client CA",
 * an expired certificate included.
 */
function verifyFailure(error: unknown): string {
  const code = typeof error === 'string' ? error : error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : undefined;
  if (code === undefined || code === '') return 'it does not verify against the configured client CA';
  return VERIFY_FAILURES[code] ?? `OpenSSL: ${code}`;
}

function fingerprint(material: tls.SecureContextOptions): string {
  return [material.cert, material.key, material.ca].map((b) => (b === undefined ? '' : Buffer.from(b as Buffer).toString('base64'))).join('|');
}

/**
 * Re-reads the certificate files every `reloadIntervalSeconds` and swaps the server's secure context when they
 * changed: cert-manager renewals and rotated Kubernetes secrets take effect without a restart, for new connections.
 * A half-written or mismatched pair (certificate renewed, key not yet) keeps the previous context until both fit.
 */
export function reloadTlsOnChange(server: https.Server, config: TlsConfig, logger: Logger): { stop(): void } {
  let current = fingerprint(readTlsMaterial(config));
  let lastError: string | undefined;
  const check = (): void => {
    let material: tls.SecureContextOptions;
    try {
      material = readTlsMaterial(config);
    } catch (err) {
      report(`cannot read the TLS files (${(err as Error).message}); keeping the current certificate`);
      return;
    }
    const next = fingerprint(material);
    if (next === current) return;
    try {
      tls.createSecureContext(material);
      server.setSecureContext(material);
    } catch (err) {
      report(`the new TLS files do not form a usable certificate and key (${(err as Error).message}); keeping the current certificate`);
      return;
    }
    current = next;
    lastError = undefined;
    logger.info({ certFile: config.certFile }, 'TLS certificate reloaded');
  };
  const report = (message: string): void => {
    if (message === lastError) return;
    lastError = message;
    logger.error(message);
  };
  const timer = setInterval(check, config.reloadIntervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
