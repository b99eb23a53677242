import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCredential, type UserTokenOptions } from '../../src/client/exec-credential.js';

const MAIN = path.resolve('dist/src/main.js');

/** Keystone writes expires_at with microseconds: 2026-01-01T00:00:00.000000Z. */
function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * A Keystone that issues tokens to alice (password s3cret, or any in `passwords`) and to the application credential
 * ac-1 / "ci" of alice (secret ac-secret); it counts POSTs and validates issued tokens (and `given-token`) on GET.
 */
class FakeKeystone {
  posts: Array<{ auth: { identity: Record<string, any>; scope?: unknown } }> = [];
  gets: Array<{ auth: string | undefined; subject: string | undefined }> = [];
  passwords = new Set(['s3cret']);
  expiresInMs = 3600_000;
  delayMs = 0;
  url = '';
  private issued = new Set(['given-token']);
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const tokenBody = (): string =>
        JSON.stringify({ token: { expires_at: keystoneTime(Date.now() + this.expiresInMs), user: { id: 'u1', name: 'alice', domain: { id: 'default' } } } });
      if (req.method === 'GET' && req.url?.startsWith('/v3/auth/tokens')) {
        const auth = req.headers['x-auth-token'] as string | undefined;
        const subject = req.headers['x-subject-token'] as string | undefined;
        this.gets.push({ auth, subject });
        const ok = auth !== undefined && auth === subject && this.issued.has(subject);
        res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
        res.end(ok ? tokenBody() : '{"error":{"code":404}}');
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v3/auth/tokens?nocatalog') {
        res.writeHead(404).end();
        return;
      }
      const parsed = JSON.parse(body || '{}');
      this.posts.push(parsed);
      const identity = parsed.auth?.identity ?? {};
      const user = identity.password?.user;
      const ac = identity.application_credential;
      const ok =
        (identity.methods?.[0] === 'password' && (user?.name === 'alice' || user?.id === 'u1') && this.passwords.has(user?.password)) ||
        (identity.methods?.[0] === 'application_credential' &&
          ac?.secret === 'ac-secret' &&
          (ac.id === 'ac-1' || (ac.name === 'ci' && ac.user?.name === 'alice')));
      setTimeout(() => {
        if (!ok) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"error":{"code":401,"message":"The request you have made requires authentication."}}');
          return;
        }
        const token = `tok-${this.posts.length}`;
        this.issued.add(token);
        res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': token });
        res.end(tokenBody());
      }, this.delayMs);
    });
  });
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v3`;
    return this;
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function credential(env: Record<string, string>, options: UserTokenOptions = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCredential(env, { out: (s) => (out += s), err: (s) => (err += s) }, options);
  return { code, out, err };
}

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, out: stdout, err: stderr }),
    ),
  );
}

function cacheFiles(home: string, cache = 'cache'): string[] {
  try {
    return readdirSync(path.join(home, cache, 'zun-gateway'));
  } catch {
    return [];
  }
}

describe('zun-gateway credential (kubectl exec plugin)', function () {
  // Its command-line cases start node processes (the CLI's modules): seconds each on a busy two-core machine.
  this.timeout(60_000);
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

  it('from OS_* variables: a project-scoped password authentication, printed as a v1 ExecCredential with RFC 3339 expiry', async () => {
    const r = await credential(base);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    const cred = JSON.parse(r.out);
    assert.equal(cred.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(cred.kind, 'ExecCredential');
    assert.equal(cred.status.token, 'tok-1');
    assert.match(cred.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Math.abs(Date.parse(cred.status.expirationTimestamp) - (Date.now() + 3600_000)) < 5000);
    assert.deepEqual(keystone.posts[0]?.auth, {
      identity: { methods: ['password'], password: { user: { name: 'alice', domain: { name: 'Default' }, password: 's3cret' } } },
      scope: { project: { name: 'alpha', domain: { name: 'Default' } } },
    });
  });

  it('answers v1beta1 when KUBERNETES_EXEC_INFO asks for it, v1 otherwise', async () => {
    const beta = await credential({ ...base, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}' });
    assert.equal(JSON.parse(beta.out).apiVersion, 'client.authentication.k8s.io/v1beta1');
    const v1 = await credential({ ...base, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}' });
    assert.equal(JSON.parse(v1.out).apiVersion, 'client.authentication.k8s.io/v1');
  });

  it('ten runs in a row cost one Keystone authentication', async () => {
    for (let i = 0; i < 10; i += 1) {
      const r = await credential(base);
      assert.equal(r.code, 0, r.err);
      assert.equal(JSON.parse(r.out).status.token, 'tok-1');
    }
    assert.equal(keystone.posts.length, 1);
  });

  it('kubectl asking again for the token it was just given (client-go re-runs the plugin on a 401) gets a new one; other kubectl runs reuse it', async () => {
    const first = await credential(base, { caller: 1001 });
    assert.equal(JSON.parse(first.out).status.token, 'tok-1');
    assert.equal(JSON.parse((await credential(base, { caller: 1002 })).out).status.token, 'tok-1', 'another kubectl process reuses the cached token');
    // kubectl 1002 got a 401 with tok-1 (revoked, say) and runs the plugin again.
    const again = await credential(base, { caller: 1002 });
    assert.equal(again.code, 0, again.err);
    assert.equal(JSON.parse(again.out).status.token, 'tok-2', 'the refused token is not handed out again');
    assert.equal(JSON.parse((await credential(base, { caller: 1003 })).out).status.token, 'tok-2', 'the next kubectl run gets the new token');
    assert.equal(JSON.parse((await credential(base, { caller: 1004 })).out).status.token, 'tok-2');
    assert.equal(keystone.posts.length, 2);
  });

  it('without a caller (not run by kubectl), or asked again long after, the cached token is simply reused', async () => {
    let now = Date.now();
    for (let i = 0; i < 3; i += 1) assert.equal(JSON.parse((await credential(base)).out).status.token, 'tok-1');
    await credential(base, { caller: 7, now: () => now });
    now += 11 * 60_000; // a PID reused later is not the same kubectl run
    assert.equal(JSON.parse((await credential(base, { caller: 7, now: () => now })).out).status.token, 'tok-1');
    assert.equal(keystone.posts.length, 1);
  });

  it('runs started together wait for one authentication instead of each making their own', async () => {
    // Started in one turn of the loop, all six ask for the lock before the first one's Keystone call is answered.
    let waits = 0;
    const pause = (): Promise<void> => {
      waits += 1;
      return new Promise((resolve) => setImmediate(resolve));
    };
    const runs = await Promise.all(Array.from({ length: 6 }, () => credential(base, { pause })));
    for (const r of runs) assert.equal(JSON.parse(r.out).status.token, 'tok-1', r.err);
    assert.equal(keystone.posts.length, 1);
    assert.ok(waits >= 5, `${waits} waits: the other five waited for the first`);
    assert.deepEqual(cacheFiles(home).filter((f) => !/^[0-9a-f]{64}\.json$/.test(f)), [], 'no lock or temp file left');
  });

  it('a lock left by a run that died (kubectl interrupted mid-authentication) is taken over at once', async () => {
    assert.equal((await credential(base)).code, 0);
    const dir = path.join(home, 'cache', 'zun-gateway');
    const [file] = cacheFiles(home);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(path.join(dir, `${file}.lock`), String(dead));
    writeFileSync(path.join(dir, file as string), '{}'); // no usable token: the next run must authenticate
    let waits = 0;
    const r = await credential(base, {
      pause: () => {
        waits += 1;
        return Promise.reject(new Error('waited for a lock whose holder is dead'));
      },
    });
    assert.equal(JSON.parse(r.out).status.token, 'tok-2', r.err);
    assert.equal(waits, 0, 'waited for a lock whose holder is dead');
    assert.deepEqual(cacheFiles(home), [file]);
  });

  it('the cache file is 0600 in a 0700 dir, named by a hash, and holds neither password nor secret', async () => {
    assert.equal((await credential(base)).code, 0);
    const ac = { HOME: home, XDG_CACHE_HOME: path.join(home, 'cache'), OS_AUTH_URL: keystone.url, OS_APPLICATION_CREDENTIAL_ID: 'ac-1', OS_APPLICATION_CREDENTIAL_SECRET: 'ac-secret' };
    assert.equal((await credential(ac)).code, 0);
    const dir = path.join(home, 'cache', 'zun-gateway');
    const files = cacheFiles(home);
    assert.equal(files.length, 2, files.join(' '));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of files) {
      assert.match(f, /^[0-9a-f]{64}\.json$/);
      assert.equal(statSync(path.join(dir, f)).mode & 0o777, 0o600);
      const text = readFileSync(path.join(dir, f), 'utf8');
      assert.doesNotMatch(text, /s3cret|ac-secret/);
      assert.match(text, /tok-[12]/);
    }
  });

  it('does not reuse a cached token within two minutes of its expiry', async () => {
    const start = Date.now();
    await credential(base, { now: () => start });
    await credential(base, { now: () => start + 3600_000 - 121_000 });
    assert.equal(keystone.posts.length, 1, 'reused while more than 2 minutes remain');
    await credential(base, { now: () => start + 3600_000 - 119_000 });
    assert.equal(keystone.posts.length, 2, 'renewed within 2 minutes of expiry');
    keystone.expiresInMs = 100_000; // Keystone gives short tokens: each run authenticates
    const short = { ...base, XDG_CACHE_HOME: path.join(home, 'short') };
    await credential(short);
    await credential(short);
    assert.equal(keystone.posts.length, 4);
  });

  it('a changed password authenticates anew instead of reusing the old password\'s token', async () => {
    keystone.passwords.add('n3w-pass');
    assert.equal(JSON.parse((await credential(base)).out).status.token, 'tok-1');
    assert.equal(JSON.parse((await credential({ ...base, OS_PASSWORD: 'n3w-pass' })).out).status.token, 'tok-2');
    keystone.passwords.delete('s3cret');
    const stale = await credential({ ...base, OS_PASSWORD: 'wrong-now' });
    assert.equal(stale.code, 1, 'a wrong password never gets the cached token');
    assert.equal(keystone.posts.length, 3);
  });

  it('bad credentials: one line on stderr naming the user and what to check, exit 1, nothing on stdout, no secret', async () => {
    const r = await credential({ ...base, OS_PASSWORD: 'wrong-pass' });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.equal(r.err.split('\n').filter(Boolean).length, 1);
    assert.match(r.err, /^zun-gateway credential: Keystone rejected the credentials for user alice \(HTTP 401\): check OS_PASSWORD/);
    assert.doesNotMatch(r.err, /wrong-pass/);
    assert.deepEqual(cacheFiles(home), [], 'a refusal is not cached');
  });

  it('missing inputs and an unreachable Keystone: one line naming the problem, exit 1', async () => {
    const missing = await credential({ HOME: home, OS_AUTH_URL: keystone.url, OS_USERNAME: 'alice', OS_PASSWORD: 'x' });
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^zun-gateway credential: set OS_PROJECT_NAME or OS_PROJECT_ID[^\n]*\n$/);
    const nothing = await credential({ HOME: home });
    assert.match(nothing.err, /^zun-gateway credential: no Keystone URL: set OS_AUTH_URL/);
    const down = await credential({ ...base, OS_AUTH_URL: 'http://127.0.0.1:1/v3' });
    assert.equal(down.code, 1);
    assert.match(down.err, /^zun-gateway credential: Keystone unreachable: [^\n]*check OS_AUTH_URL[^\n]*\n$/);
    assert.doesNotMatch(down.err, /s3cret/);
  });

  it('a cache that cannot be written still gives the token, with a warning', async () => {
    const blocker = path.join(home, 'not-a-dir');
    writeFileSync(blocker, '');
    const r = await credential({ ...base, XDG_CACHE_HOME: blocker });
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).status.token, 'tok-1');
    assert.match(r.err, /^zun-gateway credential: warning: could not cache the token/);
  });

  it('application credentials (by id, or by name with their user) authenticate without a scope', async () => {
    const byId = await credential({ HOME: home, XDG_CACHE_HOME: path.join(home, 'c2'), OS_AUTH_URL: keystone.url, OS_APPLICATION_CREDENTIAL_ID: 'ac-1', OS_APPLICATION_CREDENTIAL_SECRET: 'ac-secret' });
    assert.equal(byId.code, 0, byId.err);
    assert.deepEqual(keystone.posts[0]?.auth, { identity: { methods: ['application_credential'], application_credential: { id: 'ac-1', secret: 'ac-secret' } } });
    const byName = await credential({
      HOME: home, XDG_CACHE_HOME: path.join(home, 'c2'), OS_AUTH_URL: keystone.url, OS_AUTH_TYPE: 'v3applicationcredential',
      OS_APPLICATION_CREDENTIAL_NAME: 'ci', OS_APPLICATION_CREDENTIAL_SECRET: 'ac-secret', OS_USERNAME: 'alice', OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_NAME: 'alpha',
    });
    assert.equal(byName.code, 0, byName.err);
    assert.deepEqual(keystone.posts[1]?.auth, {
      identity: { methods: ['application_credential'], application_credential: { secret: 'ac-secret', name: 'ci', user: { name: 'alice', domain: { name: 'Default' } } } },
    });
    const bad = await credential({ HOME: home, XDG_CACHE_HOME: path.join(home, 'c2'), OS_AUTH_URL: keystone.url, OS_APPLICATION_CREDENTIAL_ID: 'ac-1', OS_APPLICATION_CREDENTIAL_SECRET: 'bad-secret' });
    assert.match(bad.err, /^zun-gateway credential: Keystone rejected the credentials for application credential ac-1 \(HTTP 401\): check OS_APPLICATION_CREDENTIAL_SECRET/);
    assert.doesNotMatch(bad.err, /bad-secret/);
  });

  it('OS_CLOUD: clouds.yaml with secure.yaml merged over it; a bad password names the cloud, not OS_PASSWORD', async () => {
    const dir = path.join(home, 'config', 'openstack');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'clouds.yaml'),
      `clouds:\n  mine:\n    auth_type: v3password\n    auth:\n      auth_url: ${keystone.url.replace(/\/v3$/, '')}\n      username: alice\n      project_name: alpha\n      user_domain_name: Default\n      project_domain_name: Default\n`,
    );
    writeFileSync(path.join(dir, 'secure.yaml'), 'clouds:\n  mine:\n    auth:\n      password: s3cret\n');
    const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_CACHE_HOME: path.join(home, 'cache'), OS_CLOUD: 'mine' };
    const r = await credential(env, { cwd: home });
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).status.token, 'tok-1');
    assert.deepEqual(keystone.posts[0]?.auth.scope, { project: { name: 'alpha', domain: { name: 'Default' } } });
    writeFileSync(path.join(dir, 'secure.yaml'), 'clouds:\n  mine:\n    auth:\n      password: not-it\n');
    const bad = await credential(env, { cwd: home });
    assert.match(bad.err, /rejected the credentials for user alice \(HTTP 401\): check auth\.password of cloud 'mine' in /);
    assert.doesNotMatch(bad.err, /not-it/);
  });

  it('OS_TOKEN is passed through, its expiry asked of Keystone with the token itself (no authentication)', async () => {
    const r = await credential({ HOME: home, OS_AUTH_URL: keystone.url, OS_TOKEN: 'given-token' });
    assert.equal(r.code, 0, r.err);
    const cred = JSON.parse(r.out);
    assert.equal(cred.status.token, 'given-token');
    assert.match(cred.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(keystone.gets, [{ auth: 'given-token', subject: 'given-token' }]);
    assert.equal(keystone.posts.length, 0);
    const bare = await credential({ HOME: home, OS_TOKEN: 'given-token' });
    assert.deepEqual(JSON.parse(bare.out).status, { token: 'given-token' });
    const revoked = await credential({ HOME: home, OS_AUTH_URL: keystone.url, OS_TOKEN: 'revoked-token' });
    assert.equal(revoked.code, 1);
    assert.match(revoked.err, /^zun-gateway credential: Keystone does not accept OS_TOKEN \(HTTP 404\)/);
    assert.doesNotMatch(revoked.err, /revoked-token/);
  });

  it('on the command line under kubectl (KUBERNETES_EXEC_INFO set), the same parent asking twice gets a new token', async () => {
    const exec = { ...base, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}' };
    // Both runs are children of this test process: to the plugin, one kubectl asking again.
    assert.equal(JSON.parse((await cli(['credential'], exec)).out).status.token, 'tok-1');
    assert.equal(JSON.parse((await cli(['credential'], exec)).out).status.token, 'tok-2');
    assert.equal(keystone.posts.length, 2);
  });

  it('is wired as `zun-gateway credential`: an ExecCredential on stdout, then the cached token on the next run', async () => {
    const first = await cli(['credential'], base);
    assert.equal(first.code, 0, first.err);
    assert.equal(JSON.parse(first.out).status.token, 'tok-1');
    const second = await cli(['credential'], base);
    assert.equal(JSON.parse(second.out).status.token, 'tok-1');
    assert.equal(keystone.posts.length, 1);
  });

  it('on the command line, processes started together share one authentication', async () => {
    keystone.delayMs = 300;
    const runs = await Promise.all(Array.from({ length: 4 }, () => cli(['credential'], base)));
    for (const r of runs) assert.equal(JSON.parse(r.out).status.token, 'tok-1', r.err);
    assert.equal(keystone.posts.length, 1);
  });

  it('on the command line, bad credentials: non-zero exit, one stderr line, no stack trace, no password', async () => {
    const r = await cli(['credential'], { ...base, OS_PASSWORD: 'wrong-pass' });
    assert.notEqual(r.code, 0);
    assert.equal(r.out, '');
    assert.equal(r.err.split('\n').filter(Boolean).length, 1, r.err);
    assert.match(r.err, /^zun-gateway credential: Keystone rejected the credentials for user alice \(HTTP 401\)/);
    assert.doesNotMatch(r.err, /wrong-pass|    at /);
  });
});
