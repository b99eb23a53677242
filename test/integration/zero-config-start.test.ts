import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { deadKeystoneConfig, runMain, stopServes } from '../helpers/serve-process.js';

const MAIN = path.resolve('dist/src/main.js');

/** GET url trusting only `ca`: the status, or the TLS error's code. */
function getWithCa(url: string, ca: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    https
      .get(url, { ca }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** What startDiscovered started and did not stop (a test that failed or timed out): killed after each test. */
const discovered = new Set<ChildProcess>();

/** `zun-gateway serve` with no --config in `cwd`; resolves once its start summary is out, with that text and a stop. */
function startDiscovered(env: NodeJS.ProcessEnv, cwd: string): Promise<{ summary: string; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'serve'], { env: { PATH: process.env.PATH, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    discovered.add(child);
    let err = '';
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      if (/^This configuration as a file to edit: .*\n/m.test(err)) {
        resolve({
          summary: err,
          stop: () =>
            new Promise((done) => {
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.on('exit', (code) => {
      discovered.delete(child);
      reject(new Error(`serve exited (${code}) before its summary:\n${err}\n${out.slice(-2000)}`));
    });
  });
}

describe('zero-configuration start: `serve` with no configuration file', function () {
  // Each case starts one or two gateway processes: seconds each on a busy two-core machine.
  this.timeout(90_000);
  afterEach(() => {
    stopServes();
    for (const child of discovered) child.kill('SIGKILL');
    discovered.clear();
  });
  let dir: string;
  let keystone: KeystoneDouble;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-zeroconf-'));
    keystone = await new KeystoneDouble().start();
  });
  after(async () => {
    await keystone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const fresh = (name: string): { home: string; cwd: string } => {
    const home = mkdtempSync(path.join(dir, `${name}-`));
    return { home, cwd: home };
  };
  /** The gateway's own identity as OS_* variables, and a Kubernetes and an engine that are not there. */
  const envFor = (home: string): NodeJS.ProcessEnv => ({
    HOME: home,
    OS_AUTH_URL: keystone.url,
    OS_USERNAME: 'gateway',
    OS_PASSWORD: 'gateway-secret-pw',
    OS_PROJECT_NAME: 'service',
    ZUN_GATEWAY_PORT: '0',
    KUBECONFIG: path.join(home, 'no-kubeconfig'),
    DOCKER_HOST: `unix://${path.join(home, 'no-docker.sock')}`,
  });

  it('with no Keystone at all: exit code 2, one line for Keystone and one per thing not found', async () => {
    const { home, cwd } = fresh('none');
    const r = await runMain(['serve'], { HOME: home, DOCKER_HOST: 'ssh://engine' }, { cwd });
    assert.equal(r.code, 2, r.out);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines[0], 'zun-gateway: no configuration file, and no Keystone to check tokens with, so nothing can be served:');
    assert.match(lines[1] ?? '', /^ {2}Keystone: neither OS_CLOUD nor OS_AUTH_URL is set: set OS_CLOUD to a cloud of a clouds\.yaml/);
    assert.equal(lines[2], `  /k8s is not served: no Kubernetes found: set KUBECONFIG to a kubeconfig file, or create ${path.join(home, '.kube', 'config')}, or run the gateway in a pod with a service account`);
    assert.equal(lines[3], '  /docker is not served: DOCKER_HOST=ssh://engine: only unix:///path and tcp://host:port engines are supported');
    assert.equal(lines.length, 4, r.out);
  });

  it('serves HTTPS with a CA it makes once and keeps, and says what it serves, what it did not find and what to run next', async () => {
    const { home, cwd } = fresh('serve');
    const env = envFor(home);
    const state = path.join(home, '.local', 'state', 'zun-gateway');
    const first = await startDiscovered(env, cwd);
    let ca: string;
    try {
      const lines = first.summary.split('\n');
      assert.ok(lines.includes(`  Keystone   ${keystone.url} as user gateway, from OS_* variables`), first.summary);
      assert.ok(lines.includes(`  not found: /k8s is not served: KUBECONFIG=${env.KUBECONFIG} names no file that exists`), first.summary);
      assert.ok(lines.includes(`  not found: /docker is not served: DOCKER_HOST=${env.DOCKER_HOST}: there is no socket at ${path.join(home, 'no-docker.sock')} (is dockerd running?)`), first.summary);
      assert.ok(lines.includes(`  CA         ${path.join(state, 'ca.pem')} (made now): tenants trust the gateway with it`), first.summary);
      const url = /^ {2}listening {2}(https:\/\/127\.0\.0\.1:\d+) /m.exec(first.summary)?.[1];
      assert.ok(url !== undefined, first.summary);
      // zun-gateway itself when it is on PATH, else this very node and script.
      const self = lines.some((l) => l.startsWith('  zun-gateway register')) ? 'zun-gateway' : `${process.execPath} ${MAIN}`;
      assert.ok(lines.includes(`  ${self} register --url ${url}`), first.summary);
      ca = readFileSync(path.join(state, 'ca.pem'), 'utf8');
      assert.equal(await getWithCa(`${url}/readyz`, Buffer.from(ca)), 200);
      // Trusting nothing but the system's CAs, the same URL is refused: the printed CA is what verifies it.
      assert.equal(await getWithCa(`${url}/readyz`, Buffer.from('')), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assert.equal(statSync(path.join(state, 'ca-key.pem')).mode & 0o777, 0o600);
      assert.doesNotMatch(first.summary, /gateway-secret-pw/);
    } finally {
      await first.stop();
    }
    const second = await startDiscovered(env, cwd);
    await second.stop();
    assert.match(second.summary, /\(made at an earlier start and kept\)/);
    assert.equal(readFileSync(path.join(state, 'ca.pem'), 'utf8'), ca, 'the same CA at the next start');
  });

  it('./gateway.yaml, when there is one, is used instead', async () => {
    const { cwd } = fresh('file');
    deadKeystoneConfig(cwd);
    const r = await runMain(['serve'], { HOME: cwd }, { cwd, until: /"msg":"gateway listening"/ });
    assert.doesNotMatch(r.out, /no configuration file/);
    assert.match(r.out, /"port":\d+,"tls":false,"msg":"gateway listening"/);
  });

  it('`init` writes the same configuration, mode 0600 and without the password, and `serve --config` starts with it', async () => {
    const { home, cwd } = fresh('init');
    const env = envFor(home);
    const r = await runMain(['init', '--output', 'gw.yaml'], env, { cwd });
    assert.equal(r.code, 0, r.out);
    const file = path.join(cwd, 'gw.yaml');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /gateway-secret-pw/);
    assert.match(text, /^ {4}password: \$\{OS_PASSWORD\}$/m);
    assert.match(r.out, /^zun-gateway init: wrote gw\.yaml; start with it: /m);
    assert.match(r.out, /^ {2}not found: \/docker is not served: /m);
    const again = await runMain(['init', '--output', 'gw.yaml'], env, { cwd });
    assert.equal(again.code, 2);
    assert.match(again.out, /^zun-gateway: gw\.yaml exists already: pass --force to replace it, or --output <another file>$/m);
    const served = await runMain(['serve', '--config', file], env, { cwd, until: /"msg":"gateway listening"/ });
    assert.match(served.out, /"tls":true,"msg":"gateway listening"/);
  });
});
