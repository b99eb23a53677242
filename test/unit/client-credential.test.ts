import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCredential } from '../../src/client/exec-credential.js';
import { buildKubeconfig, gatewayUrls } from '../../src/client/kubeconfig.js';
import { resolveInputs } from '../../src/client/openstack-inputs.js';

/** A Keystone that issues tokens to alice/s3cret (password) and ac-1/ac-secret (application credential). */
class FakeKeystone {
  bodies: Array<{ auth: { identity: { methods: string[] }; scope?: unknown } }> = [];
  expiresInMs = 3600_000;
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const parsed = JSON.parse(body || '{}');
      this.bodies.push(parsed);
      const identity = parsed.auth?.identity ?? {};
      const ok =
        (identity.methods?.[0] === 'password' && identity.password?.user?.password === 's3cret') ||
        (identity.methods?.[0] === 'application_credential' && identity.application_credential?.secret === 'ac-secret');
      if (!ok) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":{"code":401}}');
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': `tok-${this.bodies.length}` });
      res.end(JSON.stringify({ token: { expires_at: new Date(Date.now() + this.expiresInMs).toISOString(), user: { id: 'u', name: 'alice', domain: { id: 'default' } } } }));
    });
  });
  url = '';
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v3`;
    return this;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function credential(env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCredential(env, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

describe('zun-gateway credential (kubectl exec plugin)', () => {
  let keystone: FakeKeystone;
  let home: string;
  let base: Record<string, string>;

  beforeEach(async () => {
    keystone = await new FakeKeystone().start();
    home = mkdtempSync(path.join(os.tmpdir(), 'zgw-cred-'));
    base = {
      HOME: home,
      XDG_CACHE_HOME: path.join(home, 'cache'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      OS_AUTH_URL: keystone.url,
      OS_USERNAME: 'alice',
      OS_PASSWORD: 's3cret',
      OS_PROJECT_NAME: 'alpha',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
  });
  afterEach(() => keystone.stop());

  it('prints a v1 ExecCredential with the token and its expiry from OS_* variables', async () => {
    const r = await credential(base);
    assert.equal(r.code, 0, r.err);
    const cred = JSON.parse(r.out);
    assert.equal(cred.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(cred.kind, 'ExecCredential');
    assert.equal(cred.status.token, 'tok-1');
    assert.match(cred.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const scope = keystone.bodies[0]?.auth.scope as { project: { name: string; domain: { name: string } } };
    assert.deepEqual(scope.project, { name: 'alpha', domain: { name: 'Default' } });
  });

  it('answers v1beta1 when KUBERNETES_EXEC_INFO asks for it', async () => {
    const r = await credential({ ...base, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}' });
    assert.equal(JSON.parse(r.out).apiVersion, 'client.authentication.k8s.io/v1beta1');
  });

  it('ten runs in a row cost one Keystone authentication; the cache file is 0600, hash-named, holds no secret', async () => {
    for (let i = 0; i < 10; i += 1) assert.equal((await credential(base)).code, 0);
    assert.equal(keystone.bodies.length, 1);
    const dir = path.join(home, 'cache', 'zun-gateway');
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0] as string, /^[0-9a-f]{64}\.json$/);
    assert.equal(statSync(path.join(dir, files[0] as string)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.doesNotMatch(readFileSync(path.join(dir, files[0] as string), 'utf8'), /s3cret/);
  });

  it('does not reuse a token within two minutes of its expiry', async () => {
    keystone.expiresInMs = 100_000;
    await credential(base);
    await credential(base);
    assert.equal(keystone.bodies.length, 2);
  });

  it('a changed password (or project) authenticates anew', async () => {
    await credential(base);
    await credential({ ...base, OS_PROJECT_NAME: 'beta' });
    assert.equal(keystone.bodies.length, 2);
  });

  it('bad credentials: one line on stderr naming the problem, non-zero exit, no secret printed', async () => {
    const r = await credential({ ...base, OS_PASSWORD: 'wrong-pass' });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, /^zun-gateway credential: Keystone rejected the credentials of user alice \(HTTP 401\)/);
    assert.doesNotMatch(r.err, /wrong-pass/);
    const missing = await credential({ HOME: home, OS_AUTH_URL: keystone.url, OS_USERNAME: 'alice', OS_PASSWORD: 'x' });
    assert.match(missing.err, /OS_PROJECT_NAME or OS_PROJECT_ID/);
  });

  it('application credentials authenticate without a scope', async () => {
    const r = await credential({ HOME: home, XDG_CACHE_HOME: path.join(home, 'c2'), OS_AUTH_URL: keystone.url, OS_APPLICATION_CREDENTIAL_ID: 'ac-1', OS_APPLICATION_CREDENTIAL_SECRET: 'ac-secret' });
    assert.equal(r.code, 0, r.err);
    assert.equal(keystone.bodies[0]?.auth.scope, undefined);
    assert.deepEqual(keystone.bodies[0]?.auth.identity.methods, ['application_credential']);
  });

  it('reads OS_CLOUD from clouds.yaml with secure.yaml merged over it', async () => {
    const dir = path.join(home, 'config', 'openstack');
    await import('node:fs').then((fs) => fs.mkdirSync(dir, { recursive: true }));
    writeFileSync(path.join(dir, 'clouds.yaml'), `clouds:\n  mine:\n    auth:\n      auth_url: ${keystone.url}\n      username: alice\n      project_name: alpha\n      user_domain_name: Default\n      project_domain_name: Default\n`);
    writeFileSync(path.join(dir, 'secure.yaml'), 'clouds:\n  mine:\n    auth:\n      password: s3cret\n');
    const r = await credential({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_CACHE_HOME: path.join(home, 'cache'), OS_CLOUD: 'mine' });
    assert.equal(r.code, 0, r.err);
    const inputs = resolveInputs({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), OS_CLOUD: 'mine', OS_PROJECT_NAME: 'beta' });
    assert.ok(inputs.kind === 'authenticate' && inputs.auth.method === 'password' && inputs.auth.projectName === 'beta', 'OS_* overrides clouds.yaml');
    assert.throws(() => resolveInputs({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), OS_CLOUD: 'other' }), /cloud 'other' is not in/);
  });

  it('is wired as `zun-gateway credential` on the command line', async () => {
    const main = path.resolve('dist/src/main.js');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [main, 'credential'], { env: { ...base, PATH: process.env.PATH ?? '' } }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    assert.equal(JSON.parse(out).status.token, 'tok-1');
  });
});

describe('zun-gateway kubeconfig', () => {
  it('points at /k8s, runs the plugin non-interactively, embeds the CA, holds no secret', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-kc-'));
    const ca = path.join(dir, 'ca.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const text = buildKubeconfig(
      { server: 'https://gw.example:8443', certificateAuthority: ca, namespace: 'os-alpha', plugin: { command: 'zun-gateway', args: ['credential'] } },
      { OS_CLOUD: 'mine', OS_PASSWORD: 'never-written' },
    );
    assert.doesNotMatch(text, /never-written/);
    const kc = parseYaml(text);
    assert.equal(kc.clusters[0].cluster.server, 'https://gw.example:8443/k8s');
    assert.equal(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), readFileSync(ca, 'utf8'));
    const exec = kc.users[0].user.exec;
    assert.equal(exec.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(exec.interactiveMode, 'Never');
    assert.deepEqual(exec.args, ['credential']);
    assert.deepEqual(exec.env, [{ name: 'OS_CLOUD', value: 'mine' }]);
    assert.equal(kc.contexts[0].context.namespace, 'os-alpha');
  });

  it('accepts the gateway root or its /k8s endpoint', () => {
    assert.deepEqual(gatewayUrls('https://gw:8443'), { root: 'https://gw:8443', k8s: 'https://gw:8443/k8s' });
    assert.deepEqual(gatewayUrls('https://gw:8443/k8s/'), { root: 'https://gw:8443', k8s: 'https://gw:8443/k8s' });
    assert.deepEqual(gatewayUrls('https://gw/prefix'), { root: 'https://gw/prefix', k8s: 'https://gw/prefix/k8s' });
  });
});
