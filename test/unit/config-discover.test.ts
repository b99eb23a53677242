import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { discover, discoveredConfig, type Discovery } from '../../src/config/discover.js';
import { initFileText } from '../../src/config/init-file.js';
import { parseConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { startSummary } from '../../src/config/start-summary.js';

const CLOUDS = (authUrl = 'http://keystone.example:5000/v3', password = 'from-clouds') =>
  `clouds:\n  gw:\n    region_name: RegionOne\n    auth:\n      auth_url: ${authUrl}\n      username: gateway\n      password: "${password}"\n      project_name: service\n      user_domain_name: Default\n      project_domain_name: Default\n  other:\n    auth: {auth_url: http://x:5000/v3}\n`;

describe('zero-configuration start: what the machine has (config/discover.ts)', () => {
  let dir: string;
  let home: string;
  let cwd: string;
  let socket: string;
  let engine: net.Server;
  /** Options with no default socket and no service account, unless a test gives them. */
  let options: { cwd: string; defaultDockerSocket: string; serviceAccountDir: string };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-discover-'));
    socket = path.join(dir, 'docker.sock');
    engine = net.createServer();
    await new Promise<void>((resolve) => engine.listen(socket, resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => engine.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    home = mkdtempSync(path.join(dir, 'home-'));
    cwd = path.join(home, 'work');
    mkdirSync(cwd);
    mkdirSync(path.join(home, '.config', 'openstack'), { recursive: true });
    options = { cwd, defaultDockerSocket: path.join(dir, 'no-docker.sock'), serviceAccountDir: path.join(dir, 'no-sa') };
  });

  const withClouds = (text = CLOUDS()): void => writeFileSync(path.join(home, '.config', 'openstack', 'clouds.yaml'), text);
  const kubeconfigAt = (file: string): string => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'apiVersion: v1\nkind: Config\n');
    return file;
  };
  const failure = (env: Record<string, string>): string => {
    try {
      discover(env, options);
    } catch (err) {
      assert.ok(err instanceof GatewayError && err.code === 'config_invalid', String(err));
      return err.message;
    }
    assert.fail('discovery did not fail');
  };

  describe('Keystone: the gateway\'s own identity', () => {
    it('OS_CLOUD with clouds.yaml: the password is served, but the document refers to it as ${GATEWAY_PASSWORD}', () => {
      withClouds();
      const env = { HOME: home, OS_CLOUD: 'gw' };
      const d = discover(env, options);
      assert.deepEqual(d.document.keystone, {
        authUrl: 'http://keystone.example:5000/v3',
        serviceCredentials: { username: 'gateway', userDomainName: 'Default', projectName: 'service', projectDomainName: 'Default', password: '${GATEWAY_PASSWORD}' },
        serviceType: '${ZUN_GATEWAY_SERVICE_TYPE:-zun-gateway}',
      });
      assert.deepEqual(d.secrets, { GATEWAY_PASSWORD: 'from-clouds' });
      assert.equal(d.origins.keystone, `http://keystone.example:5000/v3 as user gateway, from OS_CLOUD=gw (${path.join(home, '.config', 'openstack', 'clouds.yaml')})`);
      const config = discoveredConfig(d, env);
      assert.equal((config.keystone.serviceCredentials as { password: string }).password, 'from-clouds');
    });

    it('OS_PASSWORD beside OS_CLOUD overrides the file, and the document refers to that variable', () => {
      withClouds();
      const d = discover({ HOME: home, OS_CLOUD: 'gw', OS_PASSWORD: 'from-env' }, options);
      assert.equal((d.document.keystone as { serviceCredentials: { password: string } }).serviceCredentials.password, '${OS_PASSWORD}');
      assert.deepEqual(d.secrets, {});
    });

    it('OS_CLIENT_CONFIG_FILE is read instead of the search path', () => {
      withClouds(CLOUDS('http://wrong:5000/v3'));
      const file = path.join(dir, `clouds-${path.basename(home)}.yaml`);
      writeFileSync(file, CLOUDS('http://right:5000/v3'));
      const d = discover({ HOME: home, OS_CLOUD: 'gw', OS_CLIENT_CONFIG_FILE: file }, options);
      assert.equal((d.document.keystone as { authUrl: string }).authUrl, 'http://right:5000/v3');
    });

    it('OS_* variables alone, with an application credential and OS_CACERT (made absolute)', () => {
      const d = discover(
        { HOME: home, OS_AUTH_URL: 'https://ks.example:5000', OS_APPLICATION_CREDENTIAL_ID: 'ac1', OS_APPLICATION_CREDENTIAL_SECRET: 's', OS_CACERT: 'ca.pem' },
        options,
      );
      assert.deepEqual(d.document.keystone, {
        authUrl: 'https://ks.example:5000/v3',
        serviceCredentials: { applicationCredentialId: 'ac1', applicationCredentialSecret: '${OS_APPLICATION_CREDENTIAL_SECRET}' },
        caFile: path.join(cwd, 'ca.pem'),
        serviceType: '${ZUN_GATEWAY_SERVICE_TYPE:-zun-gateway}',
      });
      assert.equal(d.origins.keystone, 'https://ks.example:5000/v3 as application credential ac1, from OS_* variables');
    });

    it('a `$` in a value stays that character (escaped in the document, not read as a ${NAME})', () => {
      const env = { HOME: home, OS_AUTH_URL: 'http://ks:5000/v3', OS_USERNAME: 'gate$way', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'service' };
      const config = discoveredConfig(discover(env, options), env);
      assert.equal((config.keystone.serviceCredentials as { username: string }).username, 'gate$way');
    });

    it('none at all: exit-2 error with one line for Keystone and one per other thing not found', () => {
      assert.equal(
        failure({ HOME: home }),
        [
          'no configuration file, and no Keystone to check tokens with, so nothing can be served:',
          'Keystone: neither OS_CLOUD nor OS_AUTH_URL is set: set OS_CLOUD to a cloud of a clouds.yaml (looked for in ./, $XDG_CONFIG_HOME/openstack/ or ~/.config/openstack/, /etc/openstack/, or OS_CLIENT_CONFIG_FILE), or OS_AUTH_URL with OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (or an application credential: OS_APPLICATION_CREDENTIAL_ID and _SECRET)',
          `/k8s is not served: no Kubernetes found: set KUBECONFIG to a kubeconfig file, or create ${path.join(home, '.kube', 'config')}, or run the gateway in a pod with a service account`,
          `/docker is not served: no Docker engine found: set DOCKER_HOST (unix:///path/to/docker.sock or tcp://host:2376), or start dockerd (there is no socket at ${options.defaultDockerSocket})`,
        ].join('\n  '),
      );
    });

    it('a clouds.yaml but no OS_CLOUD: names the file and its clouds', () => {
      withClouds();
      assert.match(
        failure({ HOME: home }),
        new RegExp(`\\n  Keystone: OS_CLOUD is not set: set it to one of the clouds of ${path.join(home, '.config', 'openstack', 'clouds.yaml').replace(/[.]/g, '\\.')} \\(gw, other\\), or set OS_AUTH_URL with OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME\\n`),
      );
    });

    it('OS_CLOUD naming no cloud, a token, an application credential by name, a missing password: each says what to set', () => {
      withClouds();
      const base = { HOME: home, OS_AUTH_URL: 'http://ks:5000/v3' };
      const cases: Array<[Record<string, string>, string]> = [
        [{ HOME: home, OS_CLOUD: 'nope' }, `Keystone: cloud 'nope' is not in ${path.join(home, '.config', 'openstack', 'clouds.yaml')} (it has: gw, other): check OS_CLOUD`],
        [{ ...base, OS_TOKEN: 't' }, "Keystone: OS_TOKEN is a token, which expires: the gateway's own identity needs a password or an application credential it can log in with again (OS_PASSWORD, or OS_APPLICATION_CREDENTIAL_ID and _SECRET)"],
        [
          { ...base, OS_APPLICATION_CREDENTIAL_NAME: 'n', OS_APPLICATION_CREDENTIAL_SECRET: 's', OS_USERNAME: 'u' },
          "Keystone: an application credential given by name (OS_APPLICATION_CREDENTIAL_NAME) cannot be the gateway's identity: give its id (OS_APPLICATION_CREDENTIAL_ID)",
        ],
        [{ ...base, OS_USERNAME: 'u', OS_PROJECT_NAME: 'p' }, 'Keystone: no credentials: set OS_PASSWORD (with OS_USERNAME), an application credential, OS_TOKEN or OS_CLOUD'],
      ];
      for (const [env, line] of cases) {
        const message = failure(env);
        assert.ok(message.split('\n  ').includes(line), `${line}\nnot in:\n${message}`);
      }
    });
  });

  describe('Kubernetes: KUBECONFIG, else ~/.kube/config, else the in-cluster service account', () => {
    const env = (extra: Record<string, string>) => ({ HOME: home, OS_AUTH_URL: 'http://ks:5000/v3', OS_USERNAME: 'g', OS_PASSWORD: 'p', OS_PROJECT_NAME: 's', ...extra });

    it('KUBECONFIG first (its first file that exists), over ~/.kube/config', () => {
      kubeconfigAt(path.join(home, '.kube', 'config'));
      const mine = kubeconfigAt(path.join(home, 'kc', 'mine'));
      const d = discover(env({ KUBECONFIG: `${path.join(home, 'nope')}:${mine}:${path.join(home, '.kube', 'config')}` }), options);
      assert.equal((d.document.k8s as { kubeconfig: string }).kubeconfig, mine);
      assert.match(d.origins.k8s ?? '', /from KUBECONFIG \(the first of KUBECONFIG's files that exists; the others are not merged in\)$/);
    });

    it('~/.kube/config when KUBECONFIG is not set, over the service account', () => {
      const own = kubeconfigAt(path.join(home, '.kube', 'config'));
      const sa = path.join(home, 'sa');
      kubeconfigAt(path.join(sa, 'token'));
      const d = discover(env({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }), { ...options, serviceAccountDir: sa });
      assert.equal((d.document.k8s as { kubeconfig: string }).kubeconfig, own);
    });

    it('the in-cluster service account: no kubeconfig in the document; tenancy on with the defaults written out', () => {
      const sa = path.join(home, 'sa');
      kubeconfigAt(path.join(sa, 'token'));
      const d = discover(env({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }), { ...options, serviceAccountDir: sa });
      assert.deepEqual(d.document.k8s, { tenancy: { namespaceTemplate: 'os-{project_name}', roleBindings: { admin: 'admin', member: 'edit', reader: 'view' } } });
      assert.equal(d.origins.k8s, 'the in-cluster service account');
      // Without KUBERNETES_SERVICE_HOST the token file alone is not a cluster.
      assert.equal(discover(env({}), { ...options, serviceAccountDir: sa }).document.k8s, undefined);
    });

    it('KUBECONFIG naming no file that exists is not found, without falling back', () => {
      kubeconfigAt(path.join(home, '.kube', 'config'));
      const d = discover(env({ KUBECONFIG: '/nope/a:/nope/b' }), options);
      assert.equal(d.document.k8s, undefined);
      assert.deepEqual(d.notFound.filter((l) => l.startsWith('/k8s')), ['/k8s is not served: KUBECONFIG=/nope/a:/nope/b names no file that exists']);
    });
  });

  describe('Docker: DOCKER_HOST, else the default socket', () => {
    const env = (extra: Record<string, string>) => ({ HOME: home, OS_AUTH_URL: 'http://ks:5000/v3', OS_USERNAME: 'g', OS_PASSWORD: 'p', OS_PROJECT_NAME: 's', ...extra });
    const dockerNotFound = (d: Discovery) => d.notFound.filter((l) => l.startsWith('/docker'));

    it('the default socket when it is one; DOCKER_HOST over it', () => {
      const d = discover(env({}), { ...options, defaultDockerSocket: socket });
      assert.deepEqual(d.document.docker, { host: `unix://${socket}` });
      assert.equal(d.origins.docker, `unix://${socket}, the default socket`);
      const other = discover(env({ DOCKER_HOST: 'tcp://engine.example:2375' }), { ...options, defaultDockerSocket: socket });
      assert.deepEqual(other.document.docker, { host: 'tcp://engine.example:2375' });
    });

    it('tcp:// with DOCKER_TLS_VERIFY: the CA and client pair of DOCKER_CERT_PATH, port 2376 by default', () => {
      const certs = path.join(home, 'certs');
      mkdirSync(certs);
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(certs, f), 'x');
      const d = discover(env({ DOCKER_HOST: 'tcp://engine.example', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }), options);
      assert.deepEqual(d.document.docker, {
        host: 'tcp://engine.example:2376',
        tls: { caFile: path.join(certs, 'ca.pem'), certFile: path.join(certs, 'cert.pem'), keyFile: path.join(certs, 'key.pem') },
      });
    });

    it('each DOCKER_HOST it cannot use, and no engine at all, is one line naming what to set', () => {
      const cases: Array<[Record<string, string>, string]> = [
        [{}, `/docker is not served: no Docker engine found: set DOCKER_HOST (unix:///path/to/docker.sock or tcp://host:2376), or start dockerd (there is no socket at ${options.defaultDockerSocket})`],
        [{ DOCKER_HOST: `unix://${dir}/gone.sock` }, `/docker is not served: DOCKER_HOST=unix://${dir}/gone.sock: there is no socket at ${dir}/gone.sock (is dockerd running?)`],
        [{ DOCKER_HOST: 'unix://docker.sock' }, '/docker is not served: DOCKER_HOST=unix://docker.sock: the socket\'s path must be absolute (unix:///path/to/docker.sock)'],
        [{ DOCKER_HOST: 'ssh://me@engine' }, '/docker is not served: DOCKER_HOST=ssh://me@engine: only unix:///path and tcp://host:port engines are supported'],
        [{ DOCKER_HOST: 'tcp://e:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: path.join(home, 'none') }, `/docker is not served: DOCKER_TLS_VERIFY is set but there is no ca.pem in DOCKER_CERT_PATH (${path.join(home, 'none')})`],
      ];
      for (const [extra, line] of cases) {
        const d = discover(env(extra), options);
        assert.equal(d.document.docker, undefined);
        assert.deepEqual(dockerNotFound(d), [line]);
      }
    });
  });

  describe('listener, service type and state', () => {
    const env = (extra: Record<string, string>) => ({ HOME: home, OS_AUTH_URL: 'http://ks:5000/v3', OS_USERNAME: 'g', OS_PASSWORD: 'p', OS_PROJECT_NAME: 's', ...extra });

    it('127.0.0.1, port ZUN_GATEWAY_PORT or 8443, service type ZUN_GATEWAY_SERVICE_TYPE or zun-gateway, HTTPS with the files of $XDG_STATE_HOME/zun-gateway or ~/.local/state/zun-gateway', () => {
      let d = discover(env({}), options);
      assert.equal(d.tls.dir, path.join(home, '.local', 'state', 'zun-gateway'));
      let config = discoveredConfig(d, env({}));
      assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8443, firstByteTimeoutSeconds: 10, headersTimeoutSeconds: 30, idleTimeoutSeconds: 65, tls: { certFile: path.join(d.tls.dir, 'tls.crt'), keyFile: path.join(d.tls.dir, 'tls.key'), reloadIntervalSeconds: 10 } });
      const state = path.join(home, 'state');
      d = discover(env({ XDG_STATE_HOME: state, ZUN_GATEWAY_PORT: '9443' }), options);
      assert.equal(d.tls.ca, path.join(state, 'zun-gateway', 'ca.pem'));
      config = discoveredConfig(d, env({ ZUN_GATEWAY_PORT: '9443' }));
      assert.equal(config.listen.port, 9443);
      assert.equal(config.keystone.serviceType, 'zun-gateway');
      assert.equal(discoveredConfig(d, env({ ZUN_GATEWAY_SERVICE_TYPE: 'gw-e2e' })).keystone.serviceType, 'gw-e2e');
    });

    it('a ZUN_GATEWAY_PORT that is no port, a service type Keystone would refuse, and no HOME nor XDG_STATE_HOME, stop the start naming the variable', () => {
      assert.equal(failure(env({ ZUN_GATEWAY_PORT: '84a3' })), 'ZUN_GATEWAY_PORT=84a3 is not a port number (0 to 65535)');
      assert.equal(failure(env({ ZUN_GATEWAY_PORT: '70000' })), 'ZUN_GATEWAY_PORT=70000 is not a port number (0 to 65535)');
      assert.equal(failure(env({ ZUN_GATEWAY_SERVICE_TYPE: 'zun gateway' })), 'ZUN_GATEWAY_SERVICE_TYPE=zun gateway is not a Keystone service type (letters, digits and dashes)');
      assert.equal(failure({ OS_AUTH_URL: 'http://ks:5000/v3' }), 'neither XDG_STATE_HOME nor HOME is set: set one, for where the gateway keeps its certificate authority');
    });
  });

  describe('`init`: the same configuration as a commented file', () => {
    it('reads back as the configuration serve uses, with no secret in it, and says what was not found', () => {
      withClouds(CLOUDS('http://ks:5000/v3', 'pa$$word: {x} # y'));
      kubeconfigAt(path.join(home, '.kube', 'config'));
      const env = { HOME: home, OS_CLOUD: 'gw' };
      const d = discover(env, options);
      const text = initFileText(d);
      assert.doesNotMatch(text, /pa\$\$word/);
      assert.deepEqual(parseConfig(text, { GATEWAY_PASSWORD: 'pa$$word: {x} # y' }), discoveredConfig(d, env));
      assert.match(text, /^# The secret came from clouds\.yaml and is not copied here: export GATEWAY_PASSWORD before starting/m);
      assert.match(text, /^# not found: \/docker is not served: no Docker engine found/m);
      assert.match(text, /^ {2}port: \$\{ZUN_GATEWAY_PORT:-8443\}$/m);
    });
  });

  describe('the start summary', () => {
    it('what is served and from where, each thing not found, the CA and the exact commands to run next', () => {
      kubeconfigAt(path.join(home, '.kube', 'config'));
      const d = discover({ HOME: home, OS_AUTH_URL: 'http://ks:5000/v3', OS_USERNAME: 'g', OS_PASSWORD: 'p', OS_PROJECT_NAME: 's' }, options);
      const text = startSummary({ discovery: d, url: 'https://127.0.0.1:8443', createdCa: true, self: 'zun-gateway' });
      const lines = text.split('\n');
      assert.ok(lines.includes(`  /k8s       the current context of ${path.join(home, '.kube', 'config')}`), text);
      assert.ok(lines.includes(`  not found: ${d.notFound[0] ?? ''}`), text);
      assert.equal(d.notFound.length, 1);
      assert.ok(lines.includes(`  CA         ${d.tls.ca} (made now): tenants trust the gateway with it`), text);
      assert.ok(lines.includes('  zun-gateway register --url https://127.0.0.1:8443'), text);
      assert.ok(lines.includes(`  zun-gateway kubeconfig --server https://127.0.0.1:8443 --certificate-authority ${d.tls.ca} --output ~/.kube/zun-gateway`), text);
      assert.ok(!text.includes('docker-config'), 'no docker-config line without /docker');
    });
  });
});
