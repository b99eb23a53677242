import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildKubeconfig, gatewayUrls, runKubeconfig, type KubeconfigCommandOptions } from '../../src/client/kubeconfig.js';

const MAIN = path.resolve('dist/src/main.js');
const SELF = { mainScript: '/opt/zun-gateway/dist/src/main.js', nodePath: '/usr/bin/node' };

/** Keystone (over http) that gives alice/s3cret the token tok-alice; and the gateway (over https) with its /whoami. */
class FakeCloud {
  keystoneUrl = '';
  gatewayUrl = '';
  posts = 0;
  whoami: 'namespace' | 'no-field' | '404' = 'namespace';
  /** What /whoami lists as the caller's clusters (coes.k8s.clusters); undefined: a gateway that lists none. */
  clusters: Array<{ name: string; server: string; namespace?: string }> | undefined;
  whoamiTokens: string[] = [];
  readonly ca: Buffer;
  private keystone = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      this.posts += 1;
      const ok = JSON.parse(body || '{}').auth?.identity?.password?.user?.password === 's3cret';
      res.writeHead(ok ? 201 : 401, { 'content-type': 'application/json', ...(ok ? { 'x-subject-token': 'tok-alice' } : {}) });
      res.end(JSON.stringify(ok ? { token: { expires_at: new Date(Date.now() + 3600_000).toISOString(), user: { id: 'u1', name: 'alice', domain: { id: 'default' } } } } : {}));
    });
  });
  private gateway: https.Server;

  constructor(dir: string) {
    const cert = path.join(dir, 'tls.crt');
    const key = path.join(dir, 'tls.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    this.ca = readFileSync(cert);
    this.gateway = https.createServer({ cert: this.ca, key: readFileSync(key) }, (req, res) => {
      if (req.url !== '/whoami' || this.whoami === '404') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
        return;
      }
      this.whoamiTokens.push(String(req.headers['x-auth-token']));
      const body = {
        user: { id: 'u1', name: 'alice' },
        ...(this.whoami === 'namespace' ? { namespace: 'os-alpha' } : {}),
        ...(this.clusters !== undefined ? { coes: { k8s: { clusters: this.clusters } } } : {}),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.keystone.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => this.gateway.listen(0, '127.0.0.1', r));
    this.keystoneUrl = `http://127.0.0.1:${(this.keystone.address() as AddressInfo).port}/v3`;
    this.gatewayUrl = `https://127.0.0.1:${(this.gateway.address() as AddressInfo).port}`;
    return this;
  }
  async stop(): Promise<void> {
    this.keystone.closeAllConnections();
    this.gateway.closeAllConnections();
    await new Promise((r) => this.keystone.close(r));
    await new Promise((r) => this.gateway.close(r));
  }
}

async function kubeconfig(opts: KubeconfigCommandOptions, env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runKubeconfig(opts, env, { out: (s) => (out += s), err: (s) => (err += s) }, SELF);
  return { code, out, err };
}

describe('zun-gateway kubeconfig', () => {
  let dir: string;
  let cloud: FakeCloud;
  let caFile: string;
  let env: Record<string, string>;

  beforeEach(async function () {
    this.timeout(20_000);
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-kc-'));
    cloud = await new FakeCloud(dir).start();
    caFile = path.join(dir, 'tls.crt');
    env = {
      HOME: dir,
      PATH: '/nonexistent',
      XDG_CACHE_HOME: path.join(dir, 'cache'),
      OS_AUTH_URL: cloud.keystoneUrl,
      OS_USERNAME: 'alice',
      OS_PASSWORD: 's3cret',
      OS_PROJECT_NAME: 'alpha',
    };
  });
  afterEach(() => cloud.stop());

  it('parses as a kubeconfig whose user runs the plugin non-interactively, with the CA embedded and no secret', async () => {
    const clouds = path.join(dir, 'clouds.yaml');
    writeFileSync(clouds, `clouds:\n  mine:\n    auth:\n      auth_url: ${cloud.keystoneUrl}\n`);
    const r = await kubeconfig(
      { server: cloud.gatewayUrl, certificateAuthority: caFile },
      { ...env, OS_CLOUD: 'mine', OS_CLIENT_CONFIG_FILE: clouds },
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    assert.doesNotMatch(r.out, /s3cret|tok-alice/);
    const kc = parseYaml(r.out);
    assert.equal(kc.kind, 'Config');
    assert.equal(kc['current-context'], 'zun-gateway');
    assert.equal(kc.clusters[0].cluster.server, `${cloud.gatewayUrl}/k8s`);
    assert.equal(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), readFileSync(caFile, 'utf8'));
    assert.deepEqual(kc.users[0].user.exec, {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: SELF.nodePath,
      args: [SELF.mainScript, 'credential'],
      env: [
        { name: 'OS_CLOUD', value: 'mine' },
        { name: 'OS_CLIENT_CONFIG_FILE', value: clouds },
      ],
      interactiveMode: 'Never',
      provideClusterInfo: false,
    });
    assert.deepEqual(kc.contexts[0], { name: 'zun-gateway', context: { cluster: 'zun-gateway', user: 'zun-gateway', namespace: 'os-alpha' } });
  });

  it('the context namespace comes from the gateway\'s /whoami, asked with the plugin\'s token over the given CA', async () => {
    const r = await kubeconfig({ server: `${cloud.gatewayUrl}/k8s`, certificateAuthority: caFile }, env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    assert.equal(parseYaml(r.out).contexts[0].context.namespace, 'os-alpha');
    assert.deepEqual(cloud.whoamiTokens, ['tok-alice']);
    // The token went to the plugin's cache: the first kubectl run costs no second authentication.
    assert.equal(cloud.posts, 1);
  });

  it('--namespace wins; without credentials nobody is asked', async () => {
    const r = await kubeconfig({ server: cloud.gatewayUrl, insecureSkipTlsVerify: true, namespace: 'team-x' }, { HOME: dir });
    assert.equal(r.code, 0, r.err);
    const kc = parseYaml(r.out);
    assert.equal(kc.contexts[0].context.namespace, 'team-x');
    assert.equal(kc.clusters[0].cluster['insecure-skip-tls-verify'], true);
    assert.equal(cloud.posts + cloud.whoamiTokens.length, 0);
  });

  it('a gateway with several clusters: a cluster and context each (<context-name>-<cluster>, the first current), one user, each its namespace', async () => {
    // The servers /whoami gives are as the gateway was reached; the kubeconfig keeps the URL the user gave.
    cloud.clusters = [
      { name: 'east', server: 'https://gateway.internal:8443/k8s/clusters/east', namespace: 'os-alpha' },
      { name: 'west', server: 'https://gateway.internal:8443/k8s/clusters/west', namespace: 'alpha-west' },
    ];
    const r = await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile, contextName: 'cloud' }, env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    const kc = parseYaml(r.out);
    const ca = readFileSync(caFile).toString('base64');
    assert.deepEqual(kc.clusters, [
      { name: 'cloud-east', cluster: { server: `${cloud.gatewayUrl}/k8s/clusters/east`, 'certificate-authority-data': ca } },
      { name: 'cloud-west', cluster: { server: `${cloud.gatewayUrl}/k8s/clusters/west`, 'certificate-authority-data': ca } },
    ]);
    assert.deepEqual(kc.contexts, [
      { name: 'cloud-east', context: { cluster: 'cloud-east', user: 'cloud', namespace: 'os-alpha' } },
      { name: 'cloud-west', context: { cluster: 'cloud-west', user: 'cloud', namespace: 'alpha-west' } },
    ]);
    assert.equal(kc['current-context'], 'cloud-east');
    assert.equal(kc.users.length, 1);
    assert.equal(kc.users[0].name, 'cloud');
    assert.deepEqual(cloud.whoamiTokens, ['tok-alice']);

    const forced = parseYaml((await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile, namespace: 'team-x' }, env)).out);
    assert.deepEqual(forced.contexts.map((c: { context: { namespace: string } }) => c.context.namespace), ['team-x', 'team-x']);
    assert.deepEqual(forced.contexts.map((c: { name: string }) => c.name), ['zun-gateway-east', 'zun-gateway-west']);
  });

  it('a gateway with one cluster, served at /k8s: the kubeconfig it always had', async () => {
    cloud.clusters = [{ name: 'default', server: 'https://gateway.internal:8443/k8s', namespace: 'os-alpha' }];
    const kc = parseYaml((await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile }, env)).out);
    assert.deepEqual(kc.clusters.map((c: { name: string; cluster: { server: string } }) => [c.name, c.cluster.server]), [['zun-gateway', `${cloud.gatewayUrl}/k8s`]]);
    assert.deepEqual(kc.contexts[0].context, { cluster: 'zun-gateway', user: 'zun-gateway', namespace: 'os-alpha' });
  });

  it('a project the gateway opens no cluster to: an error saying whom to ask, no kubeconfig', async () => {
    cloud.clusters = [];
    const r = await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile }, env);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^zun-gateway kubeconfig: your project may use none of the gateway's Kubernetes clusters \(each is open to Keystone projects with certain tags\): ask a cloud administrator\n$/);
  });

  it('a /whoami that is missing (404) or names no namespace: no namespace, one warning line', async () => {
    cloud.whoami = '404';
    const missing = await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile }, env);
    assert.equal(missing.code, 0);
    assert.equal(parseYaml(missing.out).contexts[0].context.namespace, undefined);
    assert.match(missing.err, /^zun-gateway kubeconfig: warning: the gateway has no \/whoami \(HTTP 404\); the context has no namespace \(pass --namespace to set one\)\n$/);
    cloud.whoami = 'no-field';
    const none = await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile }, env);
    assert.equal(parseYaml(none.out).contexts[0].context.namespace, undefined);
    assert.match(none.err, /^zun-gateway kubeconfig: warning: the gateway maps you to no namespace[^\n]*\n$/);
  });

  it('a gateway certificate signed by a CA not given: the warning says to pass --certificate-authority', async () => {
    const r = await kubeconfig({ server: cloud.gatewayUrl }, env);
    assert.equal(r.code, 0);
    assert.match(r.err, /^zun-gateway kubeconfig: warning: could not ask the gateway's \/whoami \([^)]*\); the gateway's certificate is not trusted here, and kubectl will refuse it too: pass --certificate-authority <the CA that signed it>; /);
  });

  it('credentials Keystone rejects are an error (one line, exit 1, no secret), not a kubeconfig that cannot work', async () => {
    const r = await kubeconfig({ server: cloud.gatewayUrl, certificateAuthority: caFile }, { ...env, OS_PASSWORD: 'wrong-pass' });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^zun-gateway kubeconfig: Keystone rejected the credentials for user alice \(HTTP 401\)/);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.doesNotMatch(r.err + r.out, /wrong-pass/);
  });

  it('refuses an http:// server, a missing or non-PEM CA, and both CA and insecure: one line, exit 1', async () => {
    const notPem = path.join(dir, 'x.txt');
    writeFileSync(notPem, 'hello');
    const cases: Array<[KubeconfigCommandOptions, RegExp]> = [
      [{ server: 'http://gw:8080', namespace: 'n' }, /--server must be an https:\/\/ URL: kubectl sends credentials .* only over TLS/],
      [{ server: 'gw', namespace: 'n' }, /--server must be a URL/],
      [{ server: 'https://gw', certificateAuthority: path.join(dir, 'nope.crt'), namespace: 'n' }, /cannot read --certificate-authority .*nope\.crt: ENOENT/],
      [{ server: 'https://gw', certificateAuthority: notPem, namespace: 'n' }, /--certificate-authority .*x\.txt holds no PEM certificate/],
      [{ server: 'https://gw', certificateAuthority: caFile, insecureSkipTlsVerify: true, namespace: 'n' }, /use either --certificate-authority or --insecure-skip-tls-verify, not both/],
      [{ server: 'https://gw', namespace: 'Not_A_Namespace' }, /--namespace must be a Kubernetes namespace name/],
    ];
    for (const [opts, message] of cases) {
      const r = await kubeconfig(opts, { HOME: dir });
      assert.equal(r.code, 1, JSON.stringify(opts));
      assert.equal(r.out, '');
      assert.match(r.err, new RegExp(`^zun-gateway kubeconfig: ${message.source}[^\\n]*\\n$`));
    }
  });

  it('the plugin command is `zun-gateway` when it is on PATH', async () => {
    const bin = path.join(dir, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(path.join(bin, 'zun-gateway'), '#!/bin/sh\n', { mode: 0o755 });
    const r = await kubeconfig({ server: 'https://gw', namespace: 'n' }, { HOME: dir, PATH: `/nonexistent:${bin}` });
    const exec = parseYaml(r.out).users[0].user.exec;
    assert.equal(exec.command, 'zun-gateway');
    assert.deepEqual(exec.args, ['credential']);
  });

  it('a `zun-gateway` that npx or `npm run` put on PATH for the moment is not recorded: kubectl would not find it', async () => {
    const dirs = [path.join(dir, '.npm', '_npx', 'a1b2', 'node_modules', '.bin'), path.join(dir, 'project', 'node_modules', '.bin')];
    for (const bin of dirs) {
      execFileSync('mkdir', ['-p', bin]);
      writeFileSync(path.join(bin, 'zun-gateway'), '#!/bin/sh\n', { mode: 0o755 });
    }
    const r = await kubeconfig({ server: 'https://gw', namespace: 'n' }, { HOME: dir, PATH: dirs.join(':') });
    const exec = parseYaml(r.out).users[0].user.exec;
    assert.equal(exec.command, path.resolve(SELF.nodePath));
    assert.deepEqual(exec.args, [SELF.mainScript, 'credential']);
  });

  it('records only non-secret selectors for the plugin, with absolute paths', () => {
    const text = buildKubeconfig(
      { server: 'https://gw', plugin: { command: 'zun-gateway', args: ['credential'] } },
      { OS_CLOUD: 'mine', OS_CLIENT_CONFIG_FILE: 'rel/clouds.yaml', OS_PASSWORD: 'pw-never-written', OS_TOKEN: 'tok-never-written', OS_APPLICATION_CREDENTIAL_SECRET: 'sec-never-written' },
    );
    assert.doesNotMatch(text, /never-written/);
    assert.deepEqual(parseYaml(text).users[0].user.exec.env, [
      { name: 'OS_CLOUD', value: 'mine' },
      { name: 'OS_CLIENT_CONFIG_FILE', value: path.resolve('rel/clouds.yaml') },
    ]);
  });

  it('`--server https://gw:8443` gets /k8s appended; a /k8s URL is kept as it is', () => {
    assert.deepEqual(gatewayUrls('https://gw:8443'), { root: 'https://gw:8443', k8s: 'https://gw:8443/k8s' });
    assert.deepEqual(gatewayUrls('https://gw:8443/'), { root: 'https://gw:8443', k8s: 'https://gw:8443/k8s' });
    assert.deepEqual(gatewayUrls('https://gw:8443/k8s/'), { root: 'https://gw:8443', k8s: 'https://gw:8443/k8s' });
    assert.deepEqual(gatewayUrls('https://gw/prefix'), { root: 'https://gw/prefix', k8s: 'https://gw/prefix/k8s' });
  });

  it('is wired as `zun-gateway kubeconfig`: --output is written with mode 0600, the server gets /k8s', async () => {
    const output = path.join(dir, 'kubeconfig');
    writeFileSync(output, 'old', { mode: 0o644 });
    const r = await new Promise<{ code: number; err: string }>((resolve) =>
      execFile(
        process.execPath,
        [MAIN, 'kubeconfig', '--server', 'https://gw:8443', '--certificate-authority', caFile, '--namespace', 'team-x', '--context-name', 'prod', '--output', output],
        { env: { HOME: dir, PATH: '/nonexistent', OS_PASSWORD: 'pw-never-written' } },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : 1, err: stderr }),
      ),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(statSync(output).mode & 0o777, 0o600);
    const text = readFileSync(output, 'utf8');
    assert.doesNotMatch(text, /pw-never-written/);
    const kc = parseYaml(text);
    assert.equal(kc.clusters[0].cluster.server, 'https://gw:8443/k8s');
    assert.equal(kc['current-context'], 'prod');
    assert.equal(kc.contexts[0].context.namespace, 'team-x');
    assert.deepEqual(kc.users[0].user.exec.args, [MAIN, 'credential']);
    assert.equal(kc.users[0].user.exec.command, process.execPath);
  });

  it('--output ~/.kube/zun on an account without ~/.kube (as the README says to run it) makes the directory, mode 0700', async () => {
    const home = path.join(dir, 'home-without-kube');
    const output = path.join(home, '.kube', 'zun');
    const r = await new Promise<{ code: number; err: string }>((resolve) =>
      execFile(
        process.execPath,
        [MAIN, 'kubeconfig', '--server', 'https://gw:8443', '--certificate-authority', caFile, '--namespace', 'team-x', '--output', output],
        { env: { HOME: home, PATH: '/nonexistent', OS_PASSWORD: 'pw' } },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : 1, err: stderr }),
      ),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(statSync(path.join(home, '.kube')).mode & 0o777, 0o700);
    assert.equal(statSync(output).mode & 0o777, 0o600);
    assert.equal(parseYaml(readFileSync(output, 'utf8')).clusters[0].cluster.server, 'https://gw:8443/k8s');
  });
});
