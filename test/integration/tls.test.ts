import assert from 'node:assert/strict';
import net from 'node:net';
import { RawConnection } from '../helpers/raw-client.js';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { selfSignedCert, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

/** The fingerprint of the certificate a fresh TLS connection to the port is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

function fingerprintOf(certFile: string): string {
  return new crypto.X509Certificate(readFileSync(certFile)).fingerprint256;
}

interface Answer {
  status: number;
  body: string;
}

function get(port: number, pathName: string, options: https.RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: pathName, rejectUnauthorized: false, agent: false, ...options }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** A CA and a client certificate it signed, made with openssl. */
function clientPki(dir: string, name: string, days = '1'): { ca: string; cert: string; key: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ca = path.join(dir, `${name}-ca.crt`);
  const caKey = path.join(dir, `${name}-ca.key`);
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name} CA`, '-keyout', caKey, '-out', ca);
  const key = path.join(dir, `${name}-client.key`);
  const csr = path.join(dir, `${name}-client.csr`);
  const cert = path.join(dir, `${name}-client.crt`);
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}-client`, '-keyout', key, '-out', csr);
  const ext = path.join(dir, `${name}-ext.cnf`);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\n');
  run('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', days, '-out', cert, '-extfile', ext);
  return { ca, cert, key };
}


describe('TLS listener (in-process gateway, real TLS, certificates made with openssl)', function () {
  this.timeout(20_000);
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let dir: string;

  before(async () => {
    keystone = await new KeystoneDouble().start();
    upstream = await new RecordingUpstream().start();
    keystone.register('alice-token', { user: 'alice', project: { id: 'p-alpha', name: 'alpha' } });
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-tls-'));
  });

  after(async () => {
    await upstream.stop();
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('certificate reload', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, tls: true, tlsExtra: 'reloadIntervalSeconds: 0.1', captureLogs: true });
    });
    after(() => gw.stop());

    it('serves a renewed certificate to new connections without a restart; a mismatched pair keeps the current one', async () => {
      const certFile = path.join(gw.dir, 'tls.crt');
      const keyFile = path.join(gw.dir, 'tls.key');
      const first = fingerprintOf(certFile);
      assert.equal(await servedFingerprint(gw.port), first);

      const renewedDir = mkdtempSync(path.join(dir, 'renewed-'));
      const renewed = selfSignedCert(renewedDir);
      copyFileSync(renewed.key, keyFile);
      copyFileSync(renewed.cert, certFile);
      const second = fingerprintOf(certFile);
      assert.notEqual(second, first);
      const reloads = gw.logs.lines.filter((l) => l.includes('TLS certificate reloaded')).length;
      await gw.logs.until('TLS certificate reloaded', reloads + 1);
      assert.equal(await servedFingerprint(gw.port), second, 'the renewed certificate is served');

      // Half an update: a new certificate whose key has not arrived yet.
      const otherDir = mkdtempSync(path.join(dir, 'other-'));
      const other = selfSignedCert(otherDir);
      copyFileSync(other.cert, certFile);
      await gw.logs.until('keeping the current certificate');
      assert.equal(await servedFingerprint(gw.port), second, 'a certificate without its key is not used');
      const status = await get(gw.port, '/healthz');
      assert.equal(status.status, 200, 'the gateway keeps serving');
      // The key follows: now the pair fits and is taken.
      copyFileSync(other.key, keyFile);
      await gw.logs.until('TLS certificate reloaded', reloads + 2);
      assert.equal(await servedFingerprint(gw.port), fingerprintOf(other.cert));
    });

    it('a client that drops the connection right after the handshake leaves nothing open on the gateway', async () => {
      const accepted: net.Socket[] = [];
      const onConnection = (socket: net.Socket): void => {
        accepted.push(socket);
      };
      gw.gateway.server.on('connection', onConnection);
      for (let i = 0; i < 5; i += 1) {
        await new Promise<void>((resolve, reject) => {
          const socket = tls.connect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false }, () => {
            socket.destroy();
            resolve();
          });
          socket.on('error', reject);
        });
      }
      gw.gateway.server.off('connection', onConnection);
      assert.equal(accepted.length, 5);
      // Each closes on the gateway's side; one left half-open would leave this waiting for mocha's timeout.
      await Promise.all(accepted.map((s) => new Promise((resolve) => (s.destroyed ? resolve(undefined) : s.once('close', resolve)))));
      const open = await new Promise<number>((resolve, reject) => gw.gateway.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
      assert.equal(open, 0, 'half-open TLS connections pile up');
    });

    it("a connection that never completes its TLS handshake is closed after the handshake timeout, not after Node's default two minutes", async () => {
      // The gateway's timeout is 10 s; this one is told 0.3 s (Node's socket timers run on no clock a test moves).
      const quick = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, tls: true, timing: { tlsHandshakeTimeoutMs: 300 } });
      try {
        const closed = [0, 1].map((i) => {
          const socket = net.connect(quick.port, '127.0.0.1');
          // One sends nothing at all, the other the start of a ClientHello and then nothing.
          if (i === 1) socket.on('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff])));
          socket.on('error', () => undefined);
          return new Promise((resolve) => socket.on('close', resolve));
        });
        await Promise.all(closed);
      } finally {
        await quick.stop();
      }
    });

    it('plain HTTP sent to the TLS port gets a plain 400 saying to use https, not a bare closed connection', async () => {
      for (const path of ['/k8s/api', '/docker/_ping']) {
        const c = await RawConnection.open(gw.port);
        c.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`);
        const text = await c.untilEnded();
        assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, path);
        assert.match(text, /this port speaks HTTPS: use https:\/\/<gateway>\/k8s/);
      }
    });

    it('refuses TLS 1.1 and older', async () => {
      await assert.rejects(
        new Promise((resolve, reject) => {
          const socket = tls.connect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.on('error', (err) => {
            socket.destroy();
            reject(err);
          });
        }),
      );
    });
  });

  describe('mutual TLS (listen.tls.clientCaFile)', () => {
    let gw: TestGateway;
    let good: { ca: string; cert: string; key: string };
    let stranger: { ca: string; cert: string; key: string };

    before(async () => {
      good = clientPki(dir, 'trusted');
      stranger = clientPki(dir, 'stranger');
      gw = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, tls: true, tlsExtra: `clientCaFile: ${good.ca}` });
    });
    after(() => gw.stop());

    it('a client certificate signed by the client CA, with a Keystone token, goes through', async () => {
      const res = await get(gw.port, '/k8s/api', { cert: readFileSync(good.cert), key: readFileSync(good.key), headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 200);
      assert.equal(upstream.last().url, '/api');
    });

    it('the certificate does not replace the token: without one the request is still 401', async () => {
      const res = await get(gw.port, '/k8s/api', { cert: readFileSync(good.cert), key: readFileSync(good.key) });
      assert.equal(res.status, 401);
      assert.match(res.body, /token/);
    });

    it('without a client certificate: 401 saying one is required, nothing forwarded, even with a valid token', async () => {
      const before = upstream.requests.length;
      const res = await get(gw.port, '/k8s/api', { headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 401);
      assert.match(res.body, /requires a client certificate/);
      assert.equal(upstream.requests.length, before);
      const r = await gw.audit.waitFor((x) => x.status === 401 && x.coe === 'gateway');
      assert.match(String(r.reason), /client certificate/);
    });

    it('a certificate from another CA: 401 saying it is not accepted', async () => {
      const res = await get(gw.port, '/k8s/api', { cert: readFileSync(stranger.cert), key: readFileSync(stranger.key), headers: { 'x-auth-token': 'alice-token' } });
      assert.equal(res.status, 401);
      assert.match(res.body, /not accepted/);
    });

    it('an expired certificate from the client CA: 401 saying it has expired (not that another CA signed it)', async () => {
      // -days -1: it expired a day ago.
      const expired = clientPki(dir, 'expired', '-1');
      const other = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, tls: true, tlsExtra: `clientCaFile: ${expired.ca}` });
      try {
        const res = await get(other.port, '/k8s/api', { cert: readFileSync(expired.cert), key: readFileSync(expired.key), headers: { 'x-auth-token': 'alice-token' } });
        assert.equal(res.status, 401);
        assert.match(res.body, /not accepted \(it has expired\)/);
        const fromStranger = await get(gw.port, '/k8s/api', { cert: readFileSync(stranger.cert), key: readFileSync(stranger.key), headers: { 'x-auth-token': 'alice-token' } });
        assert.match(fromStranger.body, /not accepted \(not signed by the configured client CA\)/);
      } finally {
        await other.stop();
      }
    });

    it('upgrades are refused the same way', async () => {
      const before = upstream.requests.length;
      const text = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false }, () => {
          socket.write('POST /k8s/api/v1/namespaces/x/pods/p/exec HTTP/1.1\r\nHost: x\r\nX-Auth-Token: alice-token\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
        });
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
        socket.on('end', () => resolve(got));
        socket.on('error', reject);
      });
      assert.match(text, /^HTTP\/1\.1 401 /);
      assert.match(text, /requires a client certificate/);
      assert.equal(upstream.requests.length, before);
    });

    it('health probes need no certificate (the kubelet presents none)', async () => {
      assert.equal((await get(gw.port, '/healthz')).status, 200);
      assert.equal((await get(gw.port, '/whoami', { headers: { 'x-auth-token': 'alice-token' } })).status, 401);
    });
  });
});
