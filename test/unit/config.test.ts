import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { parseConfig, substituteEnv } from '../../src/config/load.js';

const minimal = (extra = '') => `keystone:
  authUrl: http://127.0.0.1:5000/v3
  serviceCredentials:
    username: gateway
    password: \${GATEWAY_PASSWORD}
    userDomainName: Default
    projectName: service
    projectDomainName: Default
${extra}`;

describe('configuration', () => {
  it('substitutes ${NAME}, ${NAME:-default} and $$ after YAML parsing', () => {
    assert.deepEqual(substituteEnv({ a: '${X}', b: ['x-${Y:-dflt}'], c: 'cost: $$5' }, { X: 'a: b # not yaml' }), {
      a: 'a: b # not yaml',
      b: ['x-dflt'],
      c: 'cost: $5',
    });
    const config = parseConfig(minimal(), { GATEWAY_PASSWORD: 'p: {w}' });
    assert.equal((config.keystone.serviceCredentials as { password: string }).password, 'p: {w}');
  });

  it('${NAME} gives numbers and booleans too (a port from the environment), and passwords that look like numbers stay text', () => {
    const config = parseConfig(
      minimal('listen: {port: "${PORT}"}\nmetrics: {port: "${METRICS_PORT:-9090}"}\nk8s: {http2Watches: "${H2}", responseHeaderTimeoutSeconds: "${RHT}"}\nshutdown: {graceSeconds: "${GRACE:-5}"}'),
      { GATEWAY_PASSWORD: '12345', PORT: '28443', H2: 'false', RHT: '2.5' },
    );
    assert.equal(config.listen.port, 28443);
    assert.equal(config.metrics?.port, 9090);
    assert.equal(config.k8s?.http2Watches, false);
    assert.equal(config.k8s?.responseHeaderTimeoutSeconds, 2.5);
    assert.equal(config.shutdown.graceSeconds, 5);
    assert.equal((config.keystone.serviceCredentials as { password: string }).password, '12345');
    // What is not a number is still refused by name.
    assert.throws(() => parseConfig(minimal('listen: {port: "${PORT}"}'), { GATEWAY_PASSWORD: 'p', PORT: '84a3' }), /listen\.port: Invalid input: expected number, received string/);
    assert.throws(() => parseConfig(minimal('k8s: {http2Watches: "${H2}"}'), { GATEWAY_PASSWORD: 'p', H2: 'yes' }), /k8s\.http2Watches: Invalid input: expected boolean, received string/);
  });

  it('an unquoted ${NAME} inside { } or [ ] (not YAML) is refused with how to write it', () => {
    for (const line of ['listen: {port: ${PORT}}', 'docker: {allowedRegistries: [${REGISTRY}]}']) {
      assert.throws(() => parseConfig(minimal(line), { GATEWAY_PASSWORD: 'p', PORT: '1', REGISTRY: 'r' }), (err: unknown) =>
        err instanceof GatewayError && /is not valid YAML/.test(err.message) && err.message.includes('must be quoted, e.g. {password: "${GATEWAY_PASSWORD}"}'));
    }
    // Other YAML errors get no such hint, and the quoted and block forms are fine.
    assert.throws(() => parseConfig(minimal('listen: {port: 1'), { GATEWAY_PASSWORD: 'p' }), (err: unknown) =>
      err instanceof GatewayError && /is not valid YAML/.test(err.message) && !err.message.includes('must be quoted'));
    assert.equal(parseConfig(minimal('listen: {port: "${PORT}"}'), { GATEWAY_PASSWORD: 'p', PORT: '1' }).listen.port, 1);
  });

  it('${NAME:-default} prefers the variable when it is set, the default when it is unset or empty', () => {
    assert.deepEqual(substituteEnv({ a: '${X:-d}', b: '${Y:-d}', c: '${Z:-}' }, { X: 'set', Y: '' }), { a: 'set', b: 'd', c: '' });
  });

  it('$$ escapes a placeholder: $${X} stays the literal text ${X}', () => {
    assert.deepEqual(substituteEnv({ a: '$${X}', b: 'a$$$$b' }, { X: 'no' }), { a: '${X}', b: 'a$$b' });
  });

  it('substitutes inside lists and nested maps, naming the nested key when a variable is missing', () => {
    assert.throws(() => substituteEnv({ a: { b: ['ok', 'x${MISSING}'] } }, {}), (err: unknown) =>
      err instanceof GatewayError && err.message.includes('a.b.1') && err.message.includes('MISSING'));
  });

  it('names the key and the variable when a variable is missing', () => {
    assert.throws(() => parseConfig(minimal(), {}), (err: unknown) =>
      err instanceof GatewayError && /keystone\.serviceCredentials\.password: environment variable GATEWAY_PASSWORD is not set/.test(err.message));
  });

  it('names unknown keys and bad values', () => {
    assert.throws(() => parseConfig(minimal('k8s: {kubeconfg: /x}'), { GATEWAY_PASSWORD: 'p' }), /k8s: unknown key\(s\) 'kubeconfg'/);
    assert.throws(() => parseConfig(minimal('lissen: {port: 1}'), { GATEWAY_PASSWORD: 'p' }), /\(top level\): unknown key\(s\) 'lissen'/);
    assert.throws(() => parseConfig(minimal().replace('http://127.0.0.1:5000/v3', 'not a url'), { GATEWAY_PASSWORD: 'p' }), /keystone\.authUrl: must be an http\(s\) URL/);
    assert.throws(() => parseConfig(minimal().replace('http://127.0.0.1:5000/v3', 'ftp://x'), { GATEWAY_PASSWORD: 'p' }), /keystone\.authUrl: must be an http\(s\) URL/);
    assert.throws(() => parseConfig(minimal('listen: {port: 99999}'), { GATEWAY_PASSWORD: 'p' }), /listen\.port/);
    assert.throws(() => parseConfig(minimal('k8s: {impersonation: {userPrefix: "system:"}}'), { GATEWAY_PASSWORD: 'p' }), /k8s\.impersonation\.userPrefix: must not start with 'system:'/);
    assert.throws(() => parseConfig(minimal('k8s: {tenancy: {namespaceTemplate: "ns-{user}"}}'), { GATEWAY_PASSWORD: 'p' }), /namespaceTemplate: may only use the placeholders/);
  });

  it('a value meant as one form of a union is told what that form lacks; an empty file is told what is missing', () => {
    const env = { GATEWAY_PASSWORD: 'p' };
    const creds = (c: string) => `keystone:\n  authUrl: http://127.0.0.1:5000/v3\n  serviceCredentials: ${c}\n`;
    assert.throws(() => parseConfig(creds('{username: g, userDomainName: D, projectName: s, projectDomainName: D}'), env), /configuration is invalid:\n  keystone\.serviceCredentials\.password: missing \(required\)$/);
    assert.throws(() => parseConfig(creds('{applicationCredentialId: a}'), env), /configuration is invalid:\n  keystone\.serviceCredentials\.applicationCredentialSecret: missing \(required\)$/);
    // Neither form at all: both are named.
    assert.throws(() => parseConfig(creds('hello'), env), /keystone\.serviceCredentials: needs \{username, password, .*\} or \{applicationCredentialId, applicationCredentialSecret\}$/);
    assert.throws(() => parseConfig(minimal('docker: {limits: {maxMemory: 2 gigs}}'), env), /configuration is invalid:\n  docker\.limits\.maxMemory: must be a size such as 512m or 2g$/);
    assert.throws(() => parseConfig('', env), /configuration is invalid:\n  keystone: missing \(required\)$/);
  });

  it('fills defaults', () => {
    const config = parseConfig(minimal('k8s: {tenancy: {}}'), { GATEWAY_PASSWORD: 'p' });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8443, firstByteTimeoutSeconds: 10, headersTimeoutSeconds: 30, idleTimeoutSeconds: 65 });
    assert.equal(config.keystone.cacheTtlSeconds, 300);
    assert.deepEqual(config.k8s?.impersonation, { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true });
    assert.equal(config.k8s?.tenancy?.namespaceTemplate, 'os-{project_name}');
    assert.deepEqual(config.k8s?.tenancy?.roleBindings, { admin: 'admin', member: 'edit', reader: 'view' });
    assert.equal(config.k8s?.tenancy?.alwaysPullImages, true);
    assert.deepEqual(config.k8s?.tenancy?.sharedImages, []);
    assert.equal(config.k8s?.tenancy?.subPath, 'auto');
    assert.deepEqual(config.k8s?.tenancy?.bindingSubjects, []);
  });

  it('k8s.tenancy: shared images must be references or digests, binding subjects need a kind (and a service account its namespace)', () => {
    const env = { GATEWAY_PASSWORD: 'p' };
    const ok = parseConfig(
      minimal(`k8s: {tenancy: {alwaysPullImages: "\${PULL}", sharedImages: [local/busybox, "sha256:${'0'.repeat(64)}"], subPath: refuse, bindingSubjects: [{kind: Group, name: "keystone:project:abc"}, {kind: ServiceAccount, namespace: monitoring, name: prometheus}]}}`),
      { ...env, PULL: 'false' },
    );
    assert.equal(ok.k8s?.tenancy?.alwaysPullImages, false);
    assert.deepEqual(ok.k8s?.tenancy?.bindingSubjects, [{ kind: 'Group', name: 'keystone:project:abc' }, { kind: 'ServiceAccount', namespace: 'monitoring', name: 'prometheus' }]);
    assert.throws(() => parseConfig(minimal('k8s: {tenancy: {sharedImages: [Local/BusyBox]}}'), env), /k8s\.tenancy\.sharedImages\.0: must be an image reference/);
    assert.throws(() => parseConfig(minimal('k8s: {tenancy: {subPath: sometimes}}'), env), /k8s\.tenancy\.subPath/);
    assert.throws(() => parseConfig(minimal('k8s: {tenancy: {bindingSubjects: [{kind: ServiceAccount, name: x}]}}'), env), /k8s\.tenancy\.bindingSubjects\.0\.namespace/);
    assert.throws(() => parseConfig(minimal('k8s: {tenancy: {bindingSubjects: [{kind: Team, name: x}]}}'), env), /k8s\.tenancy\.bindingSubjects\.0/);
  });

  it('ui: the page on by default with its sign-in limits; publicUrl must be https', () => {
    const env = { GATEWAY_PASSWORD: 'p' };
    assert.deepEqual(parseConfig(minimal(), env).ui, { enabled: true, failedSignIns: { perAddress: 20, perUser: 5, windowSeconds: 900, maxTracked: 10_000 } });
    assert.equal(parseConfig(minimal('ui: {enabled: false}'), env).ui.enabled, false);
    assert.equal(parseConfig(minimal('ui: {failedSignIns: {perUser: 3}}'), env).ui.failedSignIns.perAddress, 20);
    assert.throws(() => parseConfig(minimal('ui: {publicUrl: "http://gw.example:8443"}'), env), /ui\.publicUrl.*https/);
    assert.throws(() => parseConfig(minimal('ui: {failedSignIns: {perUser: 0}}'), env), /ui\.failedSignIns\.perUser/);
  });

  it('accepts application credentials for the service identity', () => {
    const config = parseConfig(
      'keystone:\n  authUrl: https://ks/v3\n  serviceCredentials: {applicationCredentialId: id, applicationCredentialSecret: "${S}"}\n',
      { S: 'secret' },
    );
    assert.deepEqual(config.keystone.serviceCredentials, { applicationCredentialId: 'id', applicationCredentialSecret: 'secret' });
  });

  it('refuses a password identity without a project scope', () => {
    assert.throws(() => parseConfig(minimal().replace(/ {4}projectName: service\n {4}projectDomainName: Default\n/, ''), { GATEWAY_PASSWORD: 'p' }), /serviceCredentials/);
  });

  it('audit: stdout by default; a file destination needs its path; metrics need a port', () => {
    const env = { GATEWAY_PASSWORD: 'p' };
    assert.deepEqual(parseConfig(minimal(), env).audit, { destination: 'stdout' });
    assert.equal(parseConfig(minimal(), env).metrics, undefined);
    assert.deepEqual(parseConfig(minimal('audit: {destination: file, file: /var/log/zgw/audit.log}'), env).audit, {
      destination: 'file',
      file: '/var/log/zgw/audit.log',
    });
    assert.throws(() => parseConfig(minimal('audit: {destination: file}'), env), /audit\.file/);
    assert.throws(() => parseConfig(minimal('audit: {destination: syslog}'), env), /audit\.destination/);
    assert.deepEqual(parseConfig(minimal('metrics: {port: 9090}'), env).metrics, { host: '127.0.0.1', port: 9090 });
    assert.throws(() => parseConfig(minimal('metrics: {host: 0.0.0.0}'), env), /metrics\.port/);
  });

  it('listen.tls: a client CA for mutual TLS and a reload interval', () => {
    const config = parseConfig(minimal('listen: {tls: {certFile: /c, keyFile: /k, clientCaFile: /ca}}'), { GATEWAY_PASSWORD: 'p' });
    assert.deepEqual(config.listen.tls, { certFile: '/c', keyFile: '/k', clientCaFile: '/ca', reloadIntervalSeconds: 10 });
    assert.throws(() => parseConfig(minimal('listen: {tls: {certFile: /c, keyFile: /k, reloadIntervalSeconds: 0}}'), { GATEWAY_PASSWORD: 'p' }), /listen\.tls\.reloadIntervalSeconds/);
  });
});
