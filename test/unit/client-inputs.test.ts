import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keystoneAuthBody } from '../../src/auth/auth-body.js';
import { resolveInputs, type OpenStackInputs } from '../../src/config/openstack-inputs.js';

function auth(inputs: OpenStackInputs): unknown {
  assert.equal(inputs.kind, 'authenticate');
  return inputs.kind === 'authenticate' ? keystoneAuthBody(inputs.auth) : undefined;
}

describe('zun-gateway credential: OpenStack inputs', () => {
  let home: string;
  let cwd: string;
  let xdg: string;

  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'zgw-inputs-'));
    cwd = path.join(home, 'work');
    xdg = path.join(home, 'config');
    mkdirSync(cwd);
    mkdirSync(path.join(xdg, 'openstack'), { recursive: true });
  });

  const cloudsYaml = (authUrl: string, extra = ''): string =>
    `clouds:\n  mine:\n${extra}    auth:\n      auth_url: ${authUrl}\n      username: alice\n      project_name: alpha\n      user_domain_name: Default\n      project_domain_name: Default\n      password: from-file\n`;

  it('OS_* variables: user and project by name with their domains, or by id without any', () => {
    const byName = resolveInputs({ OS_AUTH_URL: 'https://ks.example:5000/v3', OS_USERNAME: 'alice', OS_PASSWORD: 'pw', OS_PROJECT_NAME: 'alpha', OS_USER_DOMAIN_ID: 'd1', OS_PROJECT_DOMAIN_NAME: 'Dom' });
    assert.equal(byName.authUrl, 'https://ks.example:5000/v3');
    assert.deepEqual(auth(byName), {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'alice', domain: { id: 'd1' }, password: 'pw' } } },
        scope: { project: { name: 'alpha', domain: { name: 'Dom' } } },
      },
    });
    const byId = resolveInputs({ OS_AUTH_URL: 'https://ks.example:5000/v3', OS_USER_ID: 'u1', OS_PASSWORD: 'pw', OS_PROJECT_ID: 'p1', OS_USER_DOMAIN_NAME: 'ignored' });
    assert.deepEqual(auth(byId), {
      auth: { identity: { methods: ['password'], password: { user: { id: 'u1', password: 'pw' } } }, scope: { project: { id: 'p1' } } },
    });
  });

  it('OS_DOMAIN_NAME stands for the user and project domains; Default when none is given', () => {
    const dom = resolveInputs({ OS_AUTH_URL: 'http://ks/v3', OS_USERNAME: 'alice', OS_PASSWORD: 'pw', OS_PROJECT_NAME: 'alpha', OS_DOMAIN_NAME: 'Corp' });
    assert.deepEqual(auth(dom), {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'alice', domain: { name: 'Corp' }, password: 'pw' } } },
        scope: { project: { name: 'alpha', domain: { name: 'Corp' } } },
      },
    });
    const none = resolveInputs({ OS_AUTH_URL: 'http://ks/v3', OS_USERNAME: 'alice', OS_PASSWORD: 'pw', OS_TENANT_NAME: 'alpha' });
    assert.deepEqual((auth(none) as { auth: { scope: unknown } }).auth.scope, { project: { name: 'alpha', domain: { name: 'Default' } } });
  });

  it('an auth URL without its version gets /v3; v2.0 and non-URLs are refused by name', () => {
    const base = { OS_USERNAME: 'alice', OS_PASSWORD: 'pw', OS_PROJECT_NAME: 'alpha' };
    assert.equal(resolveInputs({ ...base, OS_AUTH_URL: 'https://ks.example:5000' }).authUrl, 'https://ks.example:5000/v3');
    assert.equal(resolveInputs({ ...base, OS_AUTH_URL: 'https://cloud.example/identity/' }).authUrl, 'https://cloud.example/identity/v3');
    assert.equal(resolveInputs({ ...base, OS_AUTH_URL: 'https://ks.example/v3/' }).authUrl, 'https://ks.example/v3');
    assert.throws(() => resolveInputs({ ...base, OS_AUTH_URL: 'https://ks.example/v2.0' }), /OS_AUTH_URL points at Keystone's v2\.0 API/);
    assert.throws(() => resolveInputs({ ...base, OS_AUTH_URL: 'ks.example:5000' }), /OS_AUTH_URL must be an http\(s\) URL/);
  });

  it('application credential inputs: a secret is required, a name needs its user', () => {
    assert.throws(() => resolveInputs({ OS_AUTH_URL: 'http://ks/v3', OS_APPLICATION_CREDENTIAL_ID: 'ac-1' }), /without a secret: set OS_APPLICATION_CREDENTIAL_SECRET/);
    assert.throws(
      () => resolveInputs({ OS_AUTH_URL: 'http://ks/v3', OS_APPLICATION_CREDENTIAL_NAME: 'ci', OS_APPLICATION_CREDENTIAL_SECRET: 's' }),
      /OS_APPLICATION_CREDENTIAL_NAME needs its owner/,
    );
    const withPassword = resolveInputs({
      OS_AUTH_URL: 'http://ks/v3', OS_APPLICATION_CREDENTIAL_ID: 'ac-1', OS_APPLICATION_CREDENTIAL_SECRET: 's', OS_PROJECT_NAME: 'alpha', OS_USERNAME: 'alice', OS_PASSWORD: 'pw',
    });
    assert.deepEqual(auth(withPassword), { auth: { identity: { methods: ['application_credential'], application_credential: { id: 'ac-1', secret: 's' } } } });
  });

  it('clouds.yaml search path: ./clouds.yaml first, then $XDG_CONFIG_HOME/openstack; OS_CLIENT_CONFIG_FILE overrides both', () => {
    writeFileSync(path.join(xdg, 'openstack', 'clouds.yaml'), cloudsYaml('https://xdg.example/v3'));
    const env = { HOME: home, XDG_CONFIG_HOME: xdg, OS_CLOUD: 'mine' };
    assert.equal(resolveInputs(env, { cwd }).authUrl, 'https://xdg.example/v3');
    writeFileSync(path.join(cwd, 'clouds.yaml'), cloudsYaml('https://cwd.example/v3'));
    assert.equal(resolveInputs(env, { cwd }).authUrl, 'https://cwd.example/v3');
    const explicit = path.join(home, 'other.yaml');
    writeFileSync(explicit, cloudsYaml('https://explicit.example/v3'));
    assert.equal(resolveInputs({ ...env, OS_CLIENT_CONFIG_FILE: explicit }, { cwd }).authUrl, 'https://explicit.example/v3');
    assert.throws(() => resolveInputs({ ...env, OS_CLIENT_CONFIG_FILE: path.join(home, 'missing.yaml') }, { cwd }), /OS_CLIENT_CONFIG_FILE=.* does not exist/);
    assert.throws(() => resolveInputs({ ...env, OS_CLOUD: 'other' }, { cwd }), /cloud 'other' is not in .*\(it has: mine\)/);
    assert.throws(() => resolveInputs({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'none'), OS_CLOUD: 'mine' }, { cwd: home }), /no clouds\.yaml found/);
  });

  it('secure.yaml is merged over clouds.yaml, and OS_* variables override single keys of the cloud', () => {
    writeFileSync(path.join(xdg, 'openstack', 'clouds.yaml'), cloudsYaml('https://ks.example/v3'));
    writeFileSync(path.join(xdg, 'openstack', 'secure.yaml'), 'clouds:\n  mine:\n    auth:\n      password: from-secure\n');
    const env = { HOME: home, XDG_CONFIG_HOME: xdg, OS_CLOUD: 'mine' };
    const merged = resolveInputs(env, { cwd });
    assert.ok(merged.kind === 'authenticate' && merged.auth.method === 'password');
    assert.equal(merged.auth.password, 'from-secure');
    assert.equal(merged.auth.username, 'alice');
    const overridden = resolveInputs({ ...env, OS_PROJECT_NAME: 'beta' }, { cwd });
    assert.ok(overridden.kind === 'authenticate' && overridden.auth.method === 'password');
    assert.equal(overridden.auth.projectName, 'beta');
    assert.equal(overridden.auth.password, 'from-secure');
  });

  it('clouds.yaml auth_type v3applicationcredential and token; other auth types are refused by name', () => {
    const file = path.join(home, 'clouds.yaml');
    writeFileSync(
      file,
      [
        'clouds:',
        '  ac:',
        '    auth_type: v3applicationcredential',
        '    auth: {auth_url: "https://ks.example:5000", application_credential_id: ac-1, application_credential_secret: ac-secret, project_name: ignored}',
        '  tok:',
        '    auth_type: token',
        '    auth: {auth_url: "https://ks.example/v3", token: tok-123, password: ignored}',
        '  oidc:',
        '    auth_type: v3oidcpassword',
        '    auth: {auth_url: "https://ks.example/v3"}',
        '',
      ].join('\n'),
    );
    const env = { HOME: home, OS_CLIENT_CONFIG_FILE: file };
    const ac = resolveInputs({ ...env, OS_CLOUD: 'ac' }, { cwd });
    assert.equal(ac.authUrl, 'https://ks.example:5000/v3');
    assert.deepEqual(auth(ac), { auth: { identity: { methods: ['application_credential'], application_credential: { id: 'ac-1', secret: 'ac-secret' } } } });
    const tok = resolveInputs({ ...env, OS_CLOUD: 'tok' }, { cwd });
    assert.deepEqual(tok, { kind: 'token', token: 'tok-123', authUrl: 'https://ks.example/v3', caFile: undefined, regionName: undefined, hint: `auth.token of cloud 'tok' in ${file}` });
    assert.throws(() => resolveInputs({ ...env, OS_CLOUD: 'oidc' }, { cwd }), /auth_type 'v3oidcpassword' is not supported/);
  });

  it("the region: OS_REGION_NAME, else the cloud's region_name", () => {
    const file = path.join(home, 'clouds.yaml');
    writeFileSync(file, cloudsYaml('https://ks.example/v3', '    region_name: RegionTwo\n'));
    const env = { HOME: home, OS_CLIENT_CONFIG_FILE: file, OS_CLOUD: 'mine' };
    assert.equal(resolveInputs(env, { cwd }).regionName, 'RegionTwo');
    assert.equal(resolveInputs({ ...env, OS_REGION_NAME: 'RegionOne' }, { cwd }).regionName, 'RegionOne');
    assert.equal(resolveInputs({ OS_AUTH_URL: 'https://ks/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'x' }, { cwd }).regionName, undefined);
  });

  it("a cloud's cacert is read relative to its clouds.yaml; OS_CACERT overrides it", () => {
    const file = path.join(home, 'clouds.yaml');
    writeFileSync(file, cloudsYaml('https://ks.example/v3', '    cacert: certs/ca.pem\n'));
    const fromCloud = resolveInputs({ HOME: home, OS_CLIENT_CONFIG_FILE: file, OS_CLOUD: 'mine' }, { cwd });
    assert.equal(fromCloud.caFile, path.join(home, 'certs', 'ca.pem'));
    const fromEnv = resolveInputs({ HOME: home, OS_CLIENT_CONFIG_FILE: file, OS_CLOUD: 'mine', OS_CACERT: '/etc/ca.pem' }, { cwd });
    assert.equal(fromEnv.caFile, '/etc/ca.pem');
  });

  it('error messages from a broken clouds.yaml never quote its lines (which may hold a password)', () => {
    const file = path.join(home, 'clouds.yaml');
    writeFileSync(file, 'clouds:\n  mine:\n    auth:\n      password: "unterminated-s3cret\n      x: [\n');
    assert.throws(
      () => resolveInputs({ HOME: home, OS_CLIENT_CONFIG_FILE: file, OS_CLOUD: 'mine' }, { cwd }),
      (err: Error) => /^cannot read /.test(err.message) && !err.message.includes('s3cret') && !err.message.includes('\n'),
    );
  });
});
