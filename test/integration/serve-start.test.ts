import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { selfSignedCert } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { runServe, stopServes } from '../helpers/serve-process.js';

/** A gateway.yaml in `dir` with the given listener and Keystone URL, and any further lines; returns its path. */
function writeConfig(dir: string, options: { authUrl: string; listen?: string; keystoneExtra?: string; rest?: string }): string {
  const file = path.join(dir, `gateway-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    [
      `listen: ${options.listen ?? '{host: 127.0.0.1, port: 0}'}`,
      'keystone:',
      `  authUrl: ${options.authUrl}`,
      '  serviceCredentials: {username: gateway, password: "${GATEWAY_PASSWORD}", userDomainName: Default, projectName: service, projectDomainName: Default}',
      options.keystoneExtra ?? '',
      options.rest ?? '',
      '',
    ].join('\n'),
  );
  return file;
}

/** Runs `serve` expecting it to refuse to start. */
const serveFailing = (config: string) => runServe(config, { GATEWAY_PASSWORD: 'p' });

describe('`serve` checks Keystone as it starts', function () {
  // Each case starts gateway processes (node, the server's modules): seconds each on a busy two-core machine.
  this.timeout(60_000);
  afterEach(stopServes);
  let dir: string;
  let keystone: KeystoneDouble;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-start-'));
    keystone = await new KeystoneDouble().start();
  });
  after(async () => {
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a wrong service password is logged at start, before any request, naming the setting and not the password", async () => {
    keystone.refuseLogins = true;
    const config = writeConfig(dir, { authUrl: keystone.url });
    const { out } = await runServe(config, { GATEWAY_PASSWORD: 'wrong-horse-battery' }, /not ready: Keystone check failed at start/);
    const line = out.split('\n').find((l) => l.includes('not ready: Keystone check failed at start'));
    assert.ok(line !== undefined, out);
    const record = JSON.parse(line) as { level: number; keystone: string };
    assert.equal(record.level, 50, 'logged as an error');
    assert.match(record.keystone, /refuses the gateway's service credentials \(keystone\.serviceCredentials, HTTP 401\)/);
    assert.equal(keystone.validateCalls, 0, 'no request was needed to find out');
    assert.doesNotMatch(out, /wrong-horse-battery/);
  });

  it('a Keystone that does not answer at start is a warning, not "not ready": the gateway serves what it can', async () => {
    const config = writeConfig(dir, { authUrl: 'http://127.0.0.1:9/v3' });
    const { out } = await runServe(config, { GATEWAY_PASSWORD: 'p' }, /Keystone check failed at start/);
    const line = out.split('\n').find((l) => l.includes('Keystone check failed at start'));
    assert.ok(line !== undefined, out);
    const record = JSON.parse(line) as { level: number; msg: string; keystone: string };
    assert.equal(record.level, 40, 'a warning');
    assert.equal(record.msg, 'Keystone check failed at start: new tokens get 503 until it answers');
    assert.equal(record.keystone, 'unreachable');
  });
});

describe('`serve` refuses to start with a setting it cannot use, naming the setting (exit 2, as for a bad config)', function () {
  // Each case starts gateway processes: seconds each on a busy two-core machine.
  this.timeout(60_000);
  afterEach(stopServes);
  let dir: string;
  let good: { cert: string; key: string };
  let other: { cert: string; key: string };
  let busy: net.Server;
  let busyPort: number;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-start-'));
    mkdirSync(path.join(dir, 'a'));
    mkdirSync(path.join(dir, 'b'));
    good = selfSignedCert(path.join(dir, 'a'));
    other = selfSignedCert(path.join(dir, 'b'));
    busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const configWith = (listen: string, keystoneExtra = '', rest = ''): string =>
    writeConfig(dir, { authUrl: 'http://127.0.0.1:9/v3', listen, keystoneExtra, rest });

  it('a certificate, key, client CA or Keystone CA file that cannot be read', async () => {
    const missing = path.join(dir, 'nope.pem');
    const cases: Array<[string, RegExp]> = [
      [configWith(`{host: 127.0.0.1, port: 0, tls: {certFile: ${missing}, keyFile: ${good.key}}}`), /^zun-gateway: listen\.tls\.certFile: cannot read \S+nope\.pem \(no such file\)$/m],
      [configWith(`{host: 127.0.0.1, port: 0, tls: {certFile: ${good.cert}, keyFile: ${dir}}}`), /^zun-gateway: listen\.tls\.keyFile: cannot read \S+ \(it is a directory\)$/m],
      [configWith(`{host: 127.0.0.1, port: 0, tls: {certFile: ${good.cert}, keyFile: ${good.key}, clientCaFile: ${missing}}}`), /^zun-gateway: listen\.tls\.clientCaFile: cannot read \S+nope\.pem \(no such file\)$/m],
      [configWith('{host: 127.0.0.1, port: 0}', `  caFile: ${missing}`), /^zun-gateway: keystone\.caFile: cannot read \S+nope\.pem \(no such file\)$/m],
      [configWith('{host: 127.0.0.1, port: 0}', '', `docker: {host: "tcp://127.0.0.1:2376", tls: {caFile: ${missing}}}`), /^zun-gateway: docker\.tls\.caFile: cannot read \S+nope\.pem \(no such file\)$/m],
    ];
    for (const [config, message] of cases) {
      const r = await serveFailing(config);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, message);
    }
  });

  it("a key that is not the certificate's", async () => {
    const r = await serveFailing(configWith(`{host: 127.0.0.1, port: 0, tls: {certFile: ${good.cert}, keyFile: ${other.key}}}`));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /^zun-gateway: listen\.tls: certFile and keyFile are not a usable PEM certificate and its key \(.*key values mismatch\)$/m);
  });

  it('a port another process holds, for the tenant listener and for metrics', async () => {
    let r = await serveFailing(configWith(`{host: 127.0.0.1, port: ${busyPort}}`));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, new RegExp(`^zun-gateway: listen\\.port: 127\\.0\\.0\\.1:${busyPort} is already in use by another process`, 'm'));
    r = await serveFailing(configWith('{host: 127.0.0.1, port: 0}', '', `metrics: {host: 127.0.0.1, port: ${busyPort}}`));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, new RegExp(`^zun-gateway: metrics\\.port: 127\\.0\\.0\\.1:${busyPort} is already in use`, 'm'));
  });
});
