import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { RENEW_BEFORE_MS, ensureServingTls, placeholderClientCertificate, servingTlsFiles, type ServingTlsFiles } from '../../src/config/self-signed-tls.js';

const HOSTS = ['localhost', '127.0.0.1', '::1'];
const DAY = 24 * 3600_000;
const mode = (file: string): number => statSync(file).mode & 0o777;
const read = (file: string): string => readFileSync(file, 'utf8');

describe('the self-made CA and serving certificate (config/self-signed-tls.ts)', function () {
  // RSA key generation: well under a second each here, but a busy machine is slower.
  this.timeout(30_000);
  let root: string;
  let files: ServingTlsFiles;
  const start = new Date('2027-01-01T00:00:00Z');

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'zgw-selfsigned-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    files = servingTlsFiles(path.join(mkdtempSync(path.join(root, 's-')), 'state', 'zun-gateway'));
  });

  it('made once: a CA (key 0600, directory 0700) and a certificate it signed for localhost, 127.0.0.1 and ::1', () => {
    assert.deepEqual(ensureServingTls(files, { hosts: HOSTS, now: start }), { createdCa: true, createdCertificate: true });
    assert.equal(mode(files.dir), 0o700);
    assert.equal(mode(files.caKey), 0o600);
    assert.equal(mode(files.key), 0o600);
    const ca = new X509Certificate(read(files.ca));
    const cert = new X509Certificate(read(files.cert));
    assert.equal(ca.ca, true);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(ca.publicKey), 'signed by the CA');
    assert.ok(cert.checkIssued(ca));
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP('::1'), '::1');
    assert.equal(cert.checkHost('example.com'), undefined);
    // The key file is the certificate's key.
    assert.equal(createPublicKey(createPrivateKey(read(files.key))).export({ format: 'pem', type: 'spki' }), cert.publicKey.export({ format: 'pem', type: 'spki' }));
    // ca.pem holds no key.
    assert.doesNotMatch(read(files.ca), /PRIVATE KEY/);

    const before = [files.ca, files.caKey, files.cert, files.key].map(read);
    assert.deepEqual(ensureServingTls(files, { hosts: HOSTS, now: new Date(start.getTime() + 100 * DAY) }), { createdCa: false, createdCertificate: false });
    assert.deepEqual([files.ca, files.caKey, files.cert, files.key].map(read), before, 'kept as they were');
  });

  it('a certificate near its expiry, for other hosts, or not of this CA is made again by the same CA', () => {
    ensureServingTls(files, { hosts: HOSTS, now: start });
    const caPem = read(files.ca);
    const ca = new X509Certificate(caPem);
    const first = read(files.cert);
    const validTo = new Date(new X509Certificate(first).validTo).getTime();

    // Just outside the renewal window: kept; just inside: renewed.
    assert.equal(ensureServingTls(files, { hosts: HOSTS, now: new Date(validTo - RENEW_BEFORE_MS - DAY) }).createdCertificate, false);
    const renewed = ensureServingTls(files, { hosts: HOSTS, now: new Date(validTo - RENEW_BEFORE_MS + DAY) });
    assert.deepEqual(renewed, { createdCa: false, createdCertificate: true });
    assert.equal(read(files.ca), caPem, 'tenants keep trusting the same CA');
    assert.ok(new X509Certificate(read(files.cert)).verify(ca.publicKey));
    assert.notEqual(read(files.cert), first);

    assert.equal(ensureServingTls(files, { hosts: [...HOSTS, 'gateway.example'], now: start }).createdCertificate, true);
    assert.equal(new X509Certificate(read(files.cert)).checkHost('gateway.example'), 'gateway.example');

    // A pair some other CA signed (replaced by hand) is not served.
    const other = servingTlsFiles(path.join(root, `other-${Date.now()}`));
    ensureServingTls(other, { hosts: HOSTS, now: start });
    writeFileSync(files.cert, read(other.cert));
    writeFileSync(files.key, read(other.key));
    assert.equal(ensureServingTls(files, { hosts: HOSTS, now: start }).createdCertificate, true);
    assert.ok(new X509Certificate(read(files.cert)).verify(ca.publicKey));
  });

  it('an expired CA is made anew (and said so)', () => {
    ensureServingTls(files, { hosts: HOSTS, now: start });
    const caValidTo = new Date(new X509Certificate(read(files.ca)).validTo).getTime();
    assert.deepEqual(ensureServingTls(files, { hosts: HOSTS, now: new Date(caValidTo + DAY) }), { createdCa: true, createdCertificate: true });
  });

  it('another start making the certificates right now: refused with what to do; a lock left long ago is taken over', () => {
    mkdirSync(files.dir, { recursive: true });
    mkdirSync(path.join(files.dir, '.lock'));
    assert.throws(
      () => ensureServingTls(files, { hosts: HOSTS, now: new Date() }),
      (err: unknown) => err instanceof GatewayError && err.code === 'config_invalid' && err.message === `another zun-gateway is making its certificates in ${files.dir} right now; start again in a moment (or remove ${path.join(files.dir, '.lock')} if none is)`,
    );
    assert.equal(ensureServingTls(files, { hosts: HOSTS, now: new Date(Date.now() + 120_000) }).createdCa, true);
  });

  it('the placeholder client certificate docker-py wants is a self-signed client certificate with its key', () => {
    const { cert, key } = placeholderClientCertificate(start);
    const x = new X509Certificate(cert);
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.equal(x.ca, false);
    assert.equal(createPublicKey(createPrivateKey(key)).export({ format: 'pem', type: 'spki' }), x.publicKey.export({ format: 'pem', type: 'spki' }));
  });
});
