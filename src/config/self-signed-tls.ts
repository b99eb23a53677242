import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { configError } from './load.js';

// Certificates are made with node-forge (keys with node:crypto), not the openssl binary: a user's machine may have no
// openssl, and node-forge is a dependency-free, long-maintained library that builds and signs X.509 certificates.

/** Where the zero-configuration gateway keeps its CA and serving certificate (the state directory). */
export interface ServingTlsFiles {
  readonly dir: string;
  /** The CA certificate tenants trust (--certificate-authority). */
  readonly ca: string;
  /** The CA's private key and certificate, mode 0600: never leaves this directory. */
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

export function servingTlsFiles(stateDir: string): ServingTlsFiles {
  return {
    dir: stateDir,
    ca: path.join(stateDir, 'ca.pem'),
    caKey: path.join(stateDir, 'ca-key.pem'),
    cert: path.join(stateDir, 'tls.crt'),
    key: path.join(stateDir, 'tls.key'),
  };
}

const DAY_MS = 24 * 3600_000;
/** The CA outlives many serving certificates, so that tenants trust it once. */
const CA_LIFETIME_MS = 10 * 365 * DAY_MS;
/** 397 days: the longest lifetime clients that cap serving certificates (Apple's, browsers) accept. */
const CERT_LIFETIME_MS = 397 * DAY_MS;
/** A serving certificate with less left than this is replaced at start, by the same CA (tenants notice nothing). */
export const RENEW_BEFORE_MS = 30 * DAY_MS;
/** A lock left by a start that died (generation takes well under a second). */
const STALE_LOCK_MS = 60_000;

export interface EnsureOptions {
  /** DNS names and IP addresses the serving certificate must be valid for. */
  readonly hosts: readonly string[];
  readonly now?: Date;
}

export interface EnsureResult {
  /** True when the CA was made now (tenants must be given the new ca.pem). */
  readonly createdCa: boolean;
  /** True when the serving certificate was made now (first start, expiring, or other hosts). */
  readonly createdCertificate: boolean;
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // a positive INTEGER
  return bytes.toString('hex');
}

function rsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // Generated natively: node-forge's own RSA key generation is pure JavaScript and takes seconds.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const key = forge.pki.privateKeyFromPem(privateKey);
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e), pem: privateKey };
}

const isIp = (host: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');

function certificate(options: {
  subject: string;
  publicKey: forge.pki.PublicKey;
  issuer?: forge.pki.Certificate;
  signingKey: forge.pki.rsa.PrivateKey;
  notBefore: Date;
  lifetimeMs: number;
  extensions: object[];
}): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = options.publicKey;
  cert.serialNumber = serialNumber();
  // A minute back: a client whose clock is a little behind still accepts a certificate made just now.
  cert.validity.notBefore = new Date(options.notBefore.getTime() - 60_000);
  cert.validity.notAfter = new Date(options.notBefore.getTime() + options.lifetimeMs);
  const subject = [{ name: 'commonName', value: options.subject }];
  cert.setSubject(subject);
  cert.setIssuer(options.issuer?.subject.attributes ?? subject);
  cert.setExtensions([
    ...options.extensions,
    { name: 'subjectKeyIdentifier' },
    ...(options.issuer !== undefined ? [{ name: 'authorityKeyIdentifier', keyIdentifier: options.issuer.generateSubjectKeyIdentifier().getBytes() }] : []),
  ]);
  cert.sign(options.signingKey, forge.md.sha256.create());
  return cert;
}

/** Written to a temporary name and renamed, so a reader never sees half a file; `mode` from the first byte on. */
function writeAtomically(file: string, text: string, mode: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text, { mode, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw configError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

interface Ca {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

function readCa(files: ServingTlsFiles, now: Date): Ca | undefined {
  if (!existsSync(files.caKey)) return undefined;
  try {
    // ca-key.pem holds the key and the certificate together, so that the two are always written as one.
    const text = readFileSync(files.caKey, 'utf8');
    // node-forge reads the first PEM block of a text only.
    const block = (type: string): string => [...text.matchAll(/-----BEGIN ([A-Z ]+)-----[^-]+-----END \1-----/g)].find((m) => m[1] === type)?.[0] ?? '';
    const cert = forge.pki.certificateFromPem(block('CERTIFICATE'));
    const key = forge.pki.privateKeyFromPem(block('PRIVATE KEY')) as forge.pki.rsa.PrivateKey;
    if (cert.validity.notAfter.getTime() <= now.getTime()) return undefined;
    return { cert, key };
  } catch {
    return undefined;
  }
}

function makeCa(now: Date): { ca: Ca; pem: string } {
  const keys = rsaKeyPair();
  const cert = certificate({
    // A random suffix tells this machine's CA from another's in a trust store.
    subject: `zun-gateway CA ${randomBytes(4).toString('hex')}`,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: now,
    lifetimeMs: CA_LIFETIME_MS,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { ca: { cert, key: keys.privateKey }, pem: `${keys.pem}${forge.pki.certificateToPem(cert)}` };
}

/** The hosts a certificate's subjectAltName names (DNS names and IP addresses), as text. */
function altNames(cert: forge.pki.Certificate): string[] {
  const ext = cert.getExtension('subjectAltName') as { altNames?: Array<{ type: number; value?: string; ip?: string }> } | undefined;
  return (ext?.altNames ?? []).map((n) => (n.type === 7 ? (n.ip ?? '') : (n.value ?? '')));
}

/** The serving certificate is kept while this CA signed it, its key fits, it names every host and is not near expiry. */
function servingCertificateFits(files: ServingTlsFiles, ca: Ca, hosts: readonly string[], now: Date): boolean {
  try {
    const cert = forge.pki.certificateFromPem(readFileSync(files.cert, 'utf8'));
    const key = forge.pki.privateKeyFromPem(readFileSync(files.key, 'utf8')) as forge.pki.rsa.PrivateKey;
    const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
    if (!ca.cert.verify(cert) || publicKey.n.compareTo(key.n) !== 0) return false;
    if (cert.validity.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
    const names = altNames(cert);
    return hosts.every((h) => names.includes(h));
  } catch {
    return false;
  }
}

function makeServingCertificate(files: ServingTlsFiles, ca: Ca, hosts: readonly string[], now: Date): void {
  const keys = rsaKeyPair();
  const cert = certificate({
    subject: hosts[0] ?? 'localhost',
    publicKey: keys.publicKey,
    issuer: ca.cert,
    signingKey: ca.key,
    notBefore: now,
    lifetimeMs: CERT_LIFETIME_MS,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      // kubectl and docker (Go) read only subjectAltName, never the common name.
      { name: 'subjectAltName', altNames: hosts.map((h) => (isIp(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    ],
  });
  // Key first: the gateway re-reads the pair and keeps its current one until the two fit (gateway/tls.ts).
  writeAtomically(files.key, keys.pem, 0o600);
  writeAtomically(files.cert, forge.pki.certificateToPem(cert), 0o644);
}

/** An exclusive lock on the state directory while certificates are made: two starts at once must not mix pairs. */
function withLock<T>(files: ServingTlsFiles, now: Date, fn: () => T): T {
  const lock = path.join(files.dir, '.lock');
  try {
    mkdirSync(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (now.getTime() - statSync(lock).mtimeMs < STALE_LOCK_MS) {
      throw configError(`another zun-gateway is making its certificates in ${files.dir} right now; start again in a moment (or remove ${lock} if none is)`);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

/**
 * Makes the CA and the serving certificate when they do not exist yet, and a new serving certificate (same CA) when
 * the old one expires within 30 days or does not name every host. Made once and kept: tenants trust ca.pem once.
 */
export function ensureServingTls(files: ServingTlsFiles, options: EnsureOptions): EnsureResult {
  const now = options.now ?? new Date();
  try {
    mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    chmodSync(files.dir, 0o700);
  } catch (err) {
    throw configError(`cannot make the state directory ${files.dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set XDG_STATE_HOME to a writable directory`);
  }
  return withLock(files, now, () => {
    let ca = readCa(files, now);
    const createdCa = ca === undefined;
    if (ca === undefined) {
      const made = makeCa(now);
      writeAtomically(files.caKey, made.pem, 0o600);
      ca = made.ca;
    }
    const caPem = forge.pki.certificateToPem(ca.cert);
    if (createdCa || !existsSync(files.ca) || readFileSync(files.ca, 'utf8') !== caPem) writeAtomically(files.ca, caPem, 0o644);
    const createdCertificate = createdCa || !servingCertificateFits(files, ca, options.hosts, now);
    if (createdCertificate) makeServingCertificate(files, ca, options.hosts, now);
    return { createdCa, createdCertificate };
  });
}

/**
 * A self-signed client certificate that authenticates nobody: docker-py and docker-compose refuse DOCKER_TLS_VERIFY
 * without cert.pem and key.pem beside ca.pem, even when the server asks for no client certificate (the gateway asks
 * only under mutual TLS, which needs a certificate its client CA signed).
 */
export function placeholderClientCertificate(now: Date = new Date()): { cert: string; key: string } {
  const keys = rsaKeyPair();
  const cert = certificate({
    subject: 'zun-gateway docker-config placeholder (no identity)',
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: now,
    lifetimeMs: CA_LIFETIME_MS,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}
