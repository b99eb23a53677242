import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runDockerConfig, type DockerConfigCommandOptions } from '../../src/client/docker-config.js';
import { runKubeconfig } from '../../src/client/kubeconfig.js';
import { runRegister, type RegisterCommandOptions } from '../../src/client/register.js';
import { ensureServingTls, servingTlsFiles } from '../../src/config/self-signed-tls.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';

const SELF = { mainScript: '/opt/zun-gateway/dist/src/main.js', nodePath: '/usr/bin/node' };

/** A command's exit code and what it printed. */
type Ran = { code: number; out: string; err: string };
const io = () => {
  const r = { out: '', err: '' };
  return { r, io: { out: (s: string) => void (r.out += s), err: (s: string) => void (r.err += s) } };
};

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('the Keystone catalog and the tenant commands: register, kubeconfig and docker-config without --server (Keystone double)', function () {
  this.timeout(30_000);
  let dir: string;
  let keystone: KeystoneDouble;
  let gateway: https.Server;
  let gatewayUrl: string;
  let ca: string;
  let otherCa: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-catalog-'));
    keystone = await new KeystoneDouble().start();
    keystone.addUser({ id: 'admin-id', name: 'admin', password: 'admin-pw', projects: { admin: { id: 'p-admin', roles: ['admin', 'member', 'reader'] } } });
    keystone.addUser({ id: 'alice-id', name: 'alice', password: 'alice-pw-Zq9', projects: { alpha: { id: 'p-alpha', roles: ['member', 'reader'] } } });
    // The gateway's TLS as a zero-configuration gateway makes it; it answers /healthz.
    const tls = servingTlsFiles(path.join(dir, 'gw-state'));
    ensureServingTls(tls, { hosts: ['localhost', '127.0.0.1'] });
    ca = tls.ca;
    const other = servingTlsFiles(path.join(dir, 'other-state'));
    ensureServingTls(other, { hosts: ['127.0.0.1'] });
    otherCa = other.ca;
    gateway = https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end('ok'));
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    gatewayUrl = `https://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  });
  after(async () => {
    gateway.closeAllConnections();
    await new Promise((resolve) => gateway.close(resolve));
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    keystone.services.splice(0);
    keystone.endpoints.splice(0);
    keystone.applicationCredentials.clear();
    keystone.noAccessRules = false;
  });

  const home = (): string => mkdtempSync(path.join(dir, 'home-'));
  const envOf = (user: 'admin' | 'alice', extra: Record<string, string> = {}): Record<string, string> => {
    const h = home();
    return {
      HOME: h,
      PATH: '/nonexistent',
      XDG_CACHE_HOME: path.join(h, 'cache'),
      OS_AUTH_URL: keystone.url,
      OS_USERNAME: user,
      OS_PASSWORD: user === 'admin' ? 'admin-pw' : 'alice-pw-Zq9',
      OS_PROJECT_NAME: user === 'admin' ? 'admin' : 'alpha',
      ...extra,
    };
  };
  const register = async (opts: RegisterCommandOptions, env = envOf('admin')): Promise<Ran> => {
    const { r, io: commandIo } = io();
    return { code: await runRegister(opts, env, commandIo), ...r };
  };
  const dockerConfig = async (opts: DockerConfigCommandOptions, env: Record<string, string>, docker?: (args: readonly string[]) => Promise<void>): Promise<Ran> => {
    const { r, io: commandIo } = io();
    return { code: await runDockerConfig(opts, env, commandIo, docker !== undefined ? { docker } : {}), ...r };
  };
  const publicEndpoints = () => keystone.endpoints.filter((e) => e.interface === 'public');

  describe('register', () => {
    it('twice leaves one zun-gateway service and one public endpoint; a new URL updates it; a duplicate is removed', async () => {
      let r = await register({ url: gatewayUrl });
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /^zun-gateway register: created the service 'zun-gateway' of type zun-gateway \(svc-\d+\)$/m);
      assert.match(r.err, new RegExp(`^zun-gateway register: created the public endpoint ${gatewayUrl} \\(no region\\) \\(ep-\\d+\\)$`, 'm'));
      r = await register({ url: `${gatewayUrl}/` });
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /is there already/);
      assert.equal(keystone.services.length, 1);
      assert.deepEqual(publicEndpoints().map((e) => e.url), [gatewayUrl]);

      r = await register({ url: 'https://gateway.example:8443' });
      assert.match(r.err, new RegExp(`updated the public endpoint ep-\\d+ \\(no region\\): ${gatewayUrl} -> https://gateway\\.example:8443`));
      keystone.endpoints.push({ ...(publicEndpoints()[0] as (typeof keystone.endpoints)[number]), id: 'ep-by-hand' });
      r = await register({ url: 'https://gateway.example:8443' });
      assert.match(r.err, /deleted the duplicate public endpoint ep-by-hand/);
      assert.deepEqual(publicEndpoints().map((e) => e.url), ['https://gateway.example:8443']);
      assert.equal(keystone.services.length, 1);
    });

    it('--region (or OS_REGION_NAME) places the endpoint there, one per region; an unknown region is Keystone\'s 400, said', async () => {
      assert.equal((await register({ url: gatewayUrl, region: 'RegionOne' })).code, 0);
      assert.equal((await register({ url: gatewayUrl }, envOf('admin', { OS_REGION_NAME: 'RegionOne' }))).code, 0);
      assert.deepEqual(publicEndpoints().map((e) => e.region_id), ['RegionOne']);
      const r = await register({ url: gatewayUrl, region: 'Atlantis' });
      assert.equal(r.code, 1);
      assert.match(r.err, /^zun-gateway register: Keystone could not create an endpoint \(HTTP 400: Expecting to find endpoint region_id in region table\.\)$/m);
    });

    it('a tenant is refused by Keystone, and told to use admin credentials; an http or malformed URL is refused before any call', async () => {
      let r = await register({ url: gatewayUrl }, envOf('alice'));
      assert.equal(r.code, 1);
      assert.equal(
        r.err,
        "zun-gateway register: Keystone refused to let user alice list the services (HTTP 403: You are not authorized to perform the requested action.): services and endpoints are the admin role's to change; run this with admin credentials (OS_CLOUD or OS_* of an admin)\n",
      );
      const calls = keystone.identityCalls.length;
      for (const url of ['http://gateway.example:8443', 'gateway.example:8443', 'https://gw.example/?x=1']) {
        r = await register({ url });
        assert.equal(r.code, 1);
        assert.match(r.err, /--url must be the https:\/\/ URL tenants reach the gateway at/);
      }
      assert.equal(keystone.identityCalls.length, calls);
    });
  });

  describe('kubeconfig without --server', () => {
    it('finds the gateway in the catalog of the caller\'s token; OS_REGION_NAME picks the region, a regionless endpoint serves all', async () => {
      await register({ url: gatewayUrl, region: 'RegionOne' });
      const { r, io: commandIo } = io();
      const env = envOf('alice', { OS_REGION_NAME: 'RegionOne' });
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, env, commandIo, SELF), 0, r.err);
      const config = parseYaml(r.out) as { clusters: Array<{ cluster: { server: string } }> };
      assert.equal(config.clusters[0]?.cluster.server, `${gatewayUrl}/k8s`);

      const other = io();
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, envOf('alice', { OS_REGION_NAME: 'RegionTwo' }), other.io, SELF), 1);
      assert.equal(
        other.r.err,
        "zun-gateway kubeconfig: no --server given, and the Keystone catalog of user alice has no 'zun-gateway' service with a public endpoint in region RegionTwo (it has one in RegionOne: check OS_REGION_NAME): pass --server https://<gateway>:8443, or ask the operator to run `zun-gateway register --url https://<gateway>:8443`\n",
      );
    });

    it('an endpoint registered without a region serves every OS_REGION_NAME', async () => {
      await register({ url: gatewayUrl });
      const { r, io: commandIo } = io();
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, envOf('alice', { OS_REGION_NAME: 'RegionTwo' }), commandIo, SELF), 0, r.err);
      assert.match(r.out, new RegExp(`server: ${gatewayUrl.replace(/\./g, '\\.')}/k8s`));
    });

    it('a cached token Keystone revoked since is replaced once, not reported', async () => {
      await register({ url: gatewayUrl });
      const env = envOf('alice');
      const first = io();
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, env, first.io, SELF), 0, first.r.err);
      for (let n = 1; n <= keystone.issued; n += 1) keystone.revoke(`user-token-${n}`);
      const logins = keystone.issueCalls;
      const again = io();
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, env, again.io, SELF), 0, again.r.err);
      assert.equal(keystone.issueCalls - logins, 1, 'one new login');
    });

    it('no registered gateway: says to pass --server or ask the operator to register it', async () => {
      const { r, io: commandIo } = io();
      assert.equal(await runKubeconfig({ namespace: 'os-alpha' }, envOf('alice'), commandIo, SELF), 1);
      assert.match(r.err, /^zun-gateway kubeconfig: no --server given, and the Keystone catalog of user alice has no 'zun-gateway' service with a public endpoint: pass --server/);
    });
  });

  describe('docker-config', () => {
    it('creates an application credential restricted to /docker, writes config.json, ca.pem (0600, dir 0700) and prints the exports; never the password', async () => {
      await register({ url: gatewayUrl });
      const env = envOf('alice');
      const out = path.join(env.HOME as string, '.docker', 'zun-gateway');
      const r = await dockerConfig({ output: out, certificateAuthority: ca }, env);
      assert.equal(r.code, 0, r.err);
      const port = new URL(gatewayUrl).port;
      assert.equal(r.out, `export DOCKER_HOST=tcp://127.0.0.1:${port}/docker DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${out} DOCKER_CONFIG=${out}\n`);
      const [credential, ...more] = [...keystone.applicationCredentials.values()];
      assert.equal(more.length, 0);
      assert.ok(credential !== undefined);
      assert.equal(credential.name, `zun-gateway docker-config 127.0.0.1:${port} p-alpha`);
      assert.equal(credential.user.id, 'alice-id');
      assert.deepEqual(
        credential.accessRules?.map(({ service, method, path: p }) => `${service} ${method} ${p}`),
        ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].map((m) => `zun-gateway ${m} /docker/**`),
      );
      assert.match(r.err, /created the application credential 'zun-gateway docker-config 127\.0\.0\.1:\d+ p-alpha' \(ac-\d+\) of alice for project alpha, for zun-gateway \/docker only/);
      const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { HttpHeaders: Record<string, string> };
      assert.deepEqual(config.HttpHeaders, { Authorization: `Basic ${Buffer.from(`${credential.id}:${credential.secret}`).toString('base64')}` });
      assert.equal(readFileSync(path.join(out, 'ca.pem'), 'utf8'), readFileSync(ca, 'utf8'));
      assert.equal(statSync(out).mode & 0o777, 0o700);
      for (const file of ['config.json', 'ca.pem', 'cert.pem', 'key.pem']) assert.equal(statSync(path.join(out, file)).mode & 0o777, 0o600, file);
      for (const file of filesUnder(env.HOME as string)) assert.doesNotMatch(readFileSync(file, 'utf8'), /alice-pw-Zq9/, file);
    });

    it('an output directory others may write in is refused and left as it was, before any credential is made; one they may only read is used as it is', async () => {
      await register({ url: gatewayUrl });
      const env = envOf('alice');
      const out = path.join(env.HOME as string, 'shared-dir');
      mkdirSync(out);
      chmodSync(out, 0o777);
      const made = keystone.applicationCredentials.size;
      const r = await dockerConfig({ output: out, certificateAuthority: ca }, env);
      assert.equal(r.code, 1);
      assert.match(r.err, /other users may write in \S*shared-dir \(mode 777\), which would hold a credential: choose another directory, or run chmod go-w /);
      assert.equal(statSync(out).mode & 0o777, 0o777, 'not changed');
      assert.equal(keystone.applicationCredentials.size, made, 'no credential left behind');
      chmodSync(out, 0o755);
      assert.equal((await dockerConfig({ output: out, certificateAuthority: ca }, env)).code, 0);
      assert.equal(statSync(out).mode & 0o777, 0o755, 'an existing directory keeps its mode (the files are 0600)');
      assert.equal(statSync(path.join(out, 'config.json')).mode & 0o777, 0o600);
    });

    it('run again, reuses the credential its config.json holds; without that secret, replaces it (one credential of that name)', async () => {
      await register({ url: gatewayUrl });
      const env = envOf('alice');
      const out = path.join(env.HOME as string, 'docker-gw');
      assert.equal((await dockerConfig({ output: out, certificateAuthority: ca }, env)).code, 0);
      const first = readFileSync(path.join(out, 'config.json'), 'utf8');
      const again = await dockerConfig({ output: out, certificateAuthority: ca }, env);
      assert.equal(again.code, 0, again.err);
      assert.match(again.err, /reusing the application credential/);
      assert.equal(readFileSync(path.join(out, 'config.json'), 'utf8'), first);
      assert.equal(keystone.applicationCredentials.size, 1);

      rmSync(path.join(out, 'config.json'));
      const replaced = await dockerConfig({ output: out, certificateAuthority: ca }, env);
      assert.equal(replaced.code, 0, replaced.err);
      assert.match(replaced.err, /replaced the application credential ac-\d+: its secret is not in /);
      assert.equal(keystone.applicationCredentials.size, 1);
      assert.notEqual(readFileSync(path.join(out, 'config.json'), 'utf8'), first);
    });

    it('--revoke deletes the credential and takes it out of config.json', async () => {
      await register({ url: gatewayUrl });
      const env = envOf('alice');
      const out = path.join(env.HOME as string, 'docker-gw');
      mkdirSync(out, { recursive: true });
      // Settings of the user's own in config.json are kept.
      writeFileSync(path.join(out, 'config.json'), JSON.stringify({ detachKeys: 'ctrl-e,e', HttpHeaders: { 'User-Agent': 'mine', 'X-Auth-Token': 'old' } }));
      assert.equal((await dockerConfig({ output: out, certificateAuthority: ca }, env)).code, 0);
      const written = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { detachKeys: string; HttpHeaders: Record<string, string> };
      assert.equal(written.detachKeys, 'ctrl-e,e');
      assert.deepEqual(Object.keys(written.HttpHeaders).sort(), ['Authorization', 'User-Agent'], 'a token beside the credential would be refused');
      const r = await dockerConfig({ output: out, revoke: true }, env);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /deleted the application credential ac-\d+; .*config\.json no longer holds it/);
      assert.equal(keystone.applicationCredentials.size, 0);
      assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')), { detachKeys: 'ctrl-e,e', HttpHeaders: { 'User-Agent': 'mine' } });
    });

    it('--context makes a docker context in DIR with the CA and the placeholder client pair, and prints DOCKER_CONFIG only', async () => {
      const env = envOf('alice');
      const out = path.join(env.HOME as string, 'docker-ctx');
      const calls: string[][] = [];
      const r = await dockerConfig({ output: out, server: gatewayUrl, certificateAuthority: ca, context: 'zun' }, env, async (args) => void calls.push([...args]));
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `export DOCKER_CONFIG=${out}\n`);
      const host = `tcp://127.0.0.1:${new URL(gatewayUrl).port}/docker`;
      assert.deepEqual(calls, [
        ['--config', out, 'context', 'create', 'zun', '--docker', `host=${host},ca=${out}/ca.pem,cert=${out}/cert.pem,key=${out}/key.pem`],
        ['--config', out, 'context', 'use', 'zun'],
      ]);
    });

    it('a Keystone without access rules: an unrestricted credential, and a warning saying so', async () => {
      keystone.noAccessRules = true;
      const env = envOf('alice');
      const r = await dockerConfig({ output: path.join(env.HOME as string, 'd'), server: gatewayUrl, certificateAuthority: ca }, env);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /^zun-gateway docker-config: warning: this Keystone has no access rules: the credential is not restricted to the gateway; keep config\.json as secret as a password$/m);
      assert.equal([...keystone.applicationCredentials.values()][0]?.accessRules, undefined);
    });

    it('refusals, each one line saying what to do: an application-credential login, a CA that does not verify the gateway, none given, ~/.docker', async () => {
      const env = envOf('alice');
      const out = path.join(env.HOME as string, 'd');
      const cases: Array<[DockerConfigCommandOptions, Record<string, string>, RegExp]> = [
        [{ output: out, server: gatewayUrl, certificateAuthority: otherCa }, env, new RegExp(`^zun-gateway docker-config: the gateway at ${gatewayUrl.replace(/\./g, '\\.')} does not verify with --certificate-authority \\S+ \\(\\w+\\): ask the operator for the CA that signed its certificate\\n$`)],
        [{ output: out, server: gatewayUrl }, env, /^zun-gateway docker-config: the gateway's certificate at \S+ is not trusted by this machine \(\w+\): pass --certificate-authority <the CA the operator gives you; a gateway started without configuration prints its path>\n$/],
        [{ output: path.join(env.HOME as string, '.docker'), server: gatewayUrl, certificateAuthority: ca }, env, /^zun-gateway docker-config: --output \S+ is docker's default configuration directory: its HttpHeaders would go to every Docker engine you use; choose a directory of its own, e\.g\. ~\/\.docker\/zun-gateway\n$/],
        [{ output: out, server: 'http://127.0.0.1:1' }, env, /^zun-gateway docker-config: --server must be an https:\/\/ URL/],
      ];
      for (const [opts, e, message] of cases) {
        const r = await dockerConfig(opts, e);
        assert.equal(r.code, 1, r.out);
        assert.match(r.err, message);
      }
      assert.equal(existsSync(path.join(out, 'config.json')), false);
      assert.equal(keystone.applicationCredentials.size, 0);

      // Logged in with an application credential: Keystone would refuse to make another; said before asking.
      const made = await dockerConfig({ output: out, server: gatewayUrl, certificateAuthority: ca }, env);
      assert.equal(made.code, 0, made.err);
      const credential = [...keystone.applicationCredentials.values()][0];
      assert.ok(credential !== undefined);
      const viaCredential = {
        HOME: env.HOME as string,
        PATH: '/nonexistent',
        XDG_CACHE_HOME: path.join(env.HOME as string, 'cache2'),
        OS_AUTH_URL: keystone.url,
        OS_APPLICATION_CREDENTIAL_ID: credential.id,
        OS_APPLICATION_CREDENTIAL_SECRET: credential.secret,
      };
      const r = await dockerConfig({ output: path.join(env.HOME as string, 'd2'), server: gatewayUrl, certificateAuthority: ca }, viaCredential);
      assert.equal(r.code, 1);
      assert.match(r.err, /^zun-gateway docker-config: you are logged in with an application credential \(ac-\d+\), and Keystone lets those make no others: log in with your password/);
    });
  });
});
