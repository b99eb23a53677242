import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Identity, ScopeOnlyIdentity } from '../../src/auth/identity.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig, ImpersonationConfig } from '../../src/config/schema.js';
import { impersonationHeaders, scopeImpersonationHeaders } from '../../src/k8s/impersonation.js';
import { POD_SECURITY_LABEL } from '../../src/k8s/tenancy.js';
import { IMAGE_PULL_ADMISSION_PATH, POD_ADMISSION_PATH, clusterAdmissionPaths } from '../../src/routes/pod-admission.js';
import {
  CHART_DIR,
  FULL_VALUES,
  REPO_ROOT,
  at,
  helm,
  isObj,
  listAt,
  objAt,
  permissions,
  render,
  strAt,
  type Obj,
  type Rendered,
} from './render.js';

/**
 * The Helm chart, rendered by the real helm (v4, scripts/helm): default values and test/chart/values-full.yaml
 * (TLS, mutual TLS, HPA, PDB, ServiceMonitor, tenancy with quota and limits, docker, audit file).
 */

/** Every Impersonate-Extra-<key> the gateway can send, asked of the code that sends them. */
function extraKeysTheGatewaySends(): string[] {
  const config: ImpersonationConfig = { userPrefix: 'keystone:', groupPrefix: 'keystone:', extras: true };
  const user = { id: 'u1', name: 'alice', domainId: 'default', domainName: 'Default' };
  const project: Identity = {
    user,
    project: { id: 'p1', name: 'alpha', domainId: 'default', domainName: 'Default' },
    roles: ['member'],
    expiresAt: new Date(Date.now() + 3600_000),
  };
  const domainScoped: ScopeOnlyIdentity = { scope: 'domain', user, domain: { id: 'default', name: 'Default' }, roles: ['admin'], expiresAt: project.expiresAt };
  const systemScoped: ScopeOnlyIdentity = { scope: 'system', user, roles: ['admin'], expiresAt: project.expiresAt };
  const lines = [
    ...impersonationHeaders(project, config),
    ...scopeImpersonationHeaders(domainScoped, ['ops'], config),
    ...scopeImpersonationHeaders(systemScoped, ['ops'], config),
  ];
  const keys = new Set<string>();
  for (let i = 0; i < lines.length; i += 2) {
    const name = lines[i] as string;
    if (name.toLowerCase().startsWith('impersonate-extra-')) keys.add(name.slice('impersonate-extra-'.length).toLowerCase());
  }
  return [...keys];
}

const VERB_OF_METHOD: Readonly<Record<string, string>> = { read: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete' };
const GROUP_OF_API: Readonly<Record<string, string>> = { core: 'core', rbac: 'rbac.authorization.k8s.io' };

/**
 * The (group, resource, verb) triples of every apiserver call tenant provisioning (and the admission webhook's lookup
 * of a namespace's owner) makes, read from their source: `this.apis.core.readNamespace(...)` is get on namespaces,
 * `replaceNamespacedLimitRange` update on limitranges.
 */
function tenancyCalls(): string[] {
  const source = ['src/k8s/tenancy.ts', 'src/k8s/namespace-projects.ts'].map((f) => readFileSync(path.join(REPO_ROOT, f), 'utf8')).join('\n');
  const calls = new Set<string>();
  for (const m of source.matchAll(/\bapis\.(\w+)\.(\w+)\(/g)) {
    const api = m[1] as string;
    const method = m[2] as string;
    const parsed = /^(read|list|create|replace|patch|delete)(?:Namespaced)?([A-Z]\w*)$/.exec(method);
    const group = GROUP_OF_API[api];
    if (parsed === null || group === undefined) throw new Error(`tenancy.ts calls ${api}.${method}: teach this test (and the ClusterRole) about it`);
    calls.add(`${group} ${(parsed[2] as string).toLowerCase()}s ${VERB_OF_METHOD[parsed[1] as string] as string}`);
  }
  return [...calls];
}

/**
 * What the gateway, configured as the chart configures it, needs of an apiserver; nothing more. `cluster`: the
 * cluster of config.k8s.clusters it is for (its role mapping), else the first.
 */
function neededPermissions(config: GatewayConfig, cluster?: string): string[] {
  const needed = ['core users impersonate *any*', 'core groups impersonate *any*'];
  if (config.k8s?.impersonation.extras === true) {
    for (const key of extraKeysTheGatewaySends()) needed.push(`authentication.k8s.io userextras/${key} impersonate *any*`);
  }
  const tenancy = (config.k8s?.clusters.find((c) => c.name === cluster) ?? config.k8s?.clusters[0])?.tenancy;
  if (tenancy !== undefined) {
    for (const call of tenancyCalls()) needed.push(`${call} *any*`);
    // The project's own namespaces, read with the gateway's identity for `kubectl get namespaces` (k8s/tenant-views.ts).
    needed.push('core namespaces list *any*', 'core namespaces watch *any*');
    // Creating a RoleBinding to a ClusterRole needs `bind` on it (or holding all its rights).
    for (const clusterRole of new Set(Object.values(tenancy.roleBindings))) needed.push(`rbac.authorization.k8s.io clusterroles bind ${clusterRole}`);
  }
  return needed.sort();
}

function deployment(r: Rendered): Obj {
  return r.one('Deployment');
}
function podSpec(r: Rendered): Obj {
  return objAt(deployment(r), 'spec', 'template', 'spec');
}
/** The gateway's container (values-full adds a sidecar after it). */
function container(r: Rendered): Obj {
  const containers = listAt(podSpec(r), 'containers');
  assert.equal(at(containers[0], 'name'), 'gateway');
  return objAt(containers, 0);
}
function gatewayYaml(r: Rendered): string {
  return strAt(r.one('ConfigMap'), 'data', 'gateway.yaml');
}

/** The Secret-backed environment of the gateway container: name -> {secret, key}. */
function secretEnv(r: Rendered): Map<string, { secret: string; key: string }> {
  const out = new Map<string, { secret: string; key: string }>();
  for (const e of listAt(container(r), 'env')) {
    const ref = at(e, 'valueFrom', 'secretKeyRef');
    if (isObj(ref)) out.set(strAt(e, 'name'), { secret: strAt(ref, 'name'), key: strAt(ref, 'key') });
  }
  return out;
}

/** The configuration as the gateway would load it, with dummy values for the Secret-backed variables the pod has. */
function loadedConfig(r: Rendered): GatewayConfig {
  const env: Record<string, string> = {};
  for (const name of secretEnv(r).keys()) env[name] = `dummy-${name.toLowerCase()}`;
  return parseConfig(gatewayYaml(r), env, 'the chart ConfigMap gateway.yaml');
}

/** The loaded configuration as plain data, for keys read by name. */
function configData(r: Rendered): Obj {
  return JSON.parse(JSON.stringify(loadedConfig(r))) as Obj;
}

/** Which Secret or ConfigMap key a file path in the container comes from. */
function fileSource(r: Rendered, file: string): string {
  const spec = podSpec(r);
  for (const m of listAt(container(r), 'volumeMounts')) {
    const mountPath = strAt(m, 'mountPath');
    const subPath = at(m, 'subPath');
    let key: string | undefined;
    if (typeof subPath === 'string' && mountPath === file) key = subPath;
    else if (subPath === undefined && path.posix.dirname(file) === mountPath) key = path.posix.basename(file);
    if (key === undefined) continue;
    const volume = listAt(spec, 'volumes').find((v) => at(v, 'name') === at(m, 'name'));
    if (isObj(at(volume, 'secret'))) return `secret ${strAt(volume, 'secret', 'secretName')} ${key}`;
    if (isObj(at(volume, 'configMap'))) return `configMap ${strAt(volume, 'configMap', 'name')} ${key}`;
    return `other ${JSON.stringify(volume)}`;
  }
  return 'not mounted';
}

function walk(value: unknown, visit: (key: string, v: unknown) => void, key = ''): void {
  if (Array.isArray(value)) value.forEach((item) => walk(item, visit, key));
  else if (isObj(value)) for (const [k, v] of Object.entries(value)) { visit(k, v); walk(v, visit, k); }
}

describe('Helm chart charts/zun-gateway', function () {
  this.timeout(60_000);
  let defaults: Rendered;
  let full: Rendered;

  before(async () => {
    [defaults, full] = await Promise.all([render(), render({ valuesFiles: [FULL_VALUES] })]);
  });

  for (const [name, files] of [['default values', []], ['the full values file', [FULL_VALUES]]] as const) {
    it(`helm lint --strict is clean with ${name}`, async () => {
      const { stdout } = await helm(['lint', '--strict', CHART_DIR, ...files.flatMap((f) => ['--values', f])]);
      assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(stdout, /\[(WARNING|ERROR)\]/);
    });
  }

  it('renders every object it should, and no Secret', () => {
    const kinds = (r: Rendered) => r.objects.map((o) => o.kind).sort();
    assert.deepEqual(kinds(defaults), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceAccount']);
    assert.deepEqual(kinds(full), [
      'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'MutatingWebhookConfiguration', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'Service',
      'ServiceAccount', 'ServiceMonitor', 'ValidatingWebhookConfiguration',
    ]);
  });

  it("the ConfigMap's gateway.yaml is a valid gateway configuration (the real schema) with both value sets", () => {
    const d = loadedConfig(defaults);
    assert.equal(d.listen.host, '0.0.0.0');
    assert.equal(d.listen.tls, undefined);
    assert.equal(d.k8s?.clusters[0]?.kubeconfig, undefined, 'in the cluster the gateway uses its service account');
    assert.deepEqual(d.k8s?.tenancy?.roleBindings, { admin: 'admin', member: 'edit', reader: 'view' });
    assert.equal(d.docker, undefined);
    assert.equal((d.keystone.serviceCredentials as { password?: string }).password, 'dummy-gateway_password');

    const f = loadedConfig(full);
    assert.equal(f.listen.port, 9443);
    assert.equal(f.listen.tls?.reloadIntervalSeconds, 30);
    assert.equal(f.log.level, 'debug');
    assert.equal(f.shutdown.graceSeconds, 40.5);
    assert.deepEqual(f.keystone.serviceCredentials, {
      applicationCredentialId: '0123456789abcdef0123456789abcdef',
      applicationCredentialSecret: 'dummy-gateway_app_cred_secret',
    });
    assert.deepEqual(f.k8s?.tenancy?.resourceQuota, { pods: '20', 'requests.cpu': '4', 'requests.memory': '8Gi' });
    assert.equal(f.docker?.host, 'tcp://docker-engine.zun.svc:2376');
    assert.equal(f.docker?.maxBodyBytes, 2097152);
    assert.deepEqual(f.docker?.roles, { write: ['admin', 'member', 'operator'], read: ['reader'] });
    assert.deepEqual(f.docker?.allowedRegistries, ['docker.io', 'registry.example.com:5000']);
    assert.deepEqual(f.docker?.sharedImages, ['local/base:1', 'sha256:1f74ff7717929b82a4f4dc805ea496a93e63470e0d34a67ace23e7676793759f']);
    assert.equal(f.docker?.projectNetworks, false);
    assert.deepEqual(f.k8s?.impersonation.systemScopeGroups, ['cloud-admins']);
    // Keys the gateway gained with issue 6; the schema validated them above, the values must be the chart's.
    const raw = configData(full);
    assert.deepEqual(at(raw, 'audit'), { destination: 'file', file: '/var/log/zun-gateway/audit.jsonl' });
    assert.deepEqual(at(raw, 'metrics'), { host: '0.0.0.0', port: 9191 });
    // Issue 7 and 8 keys: rate limits, response-head timeouts, HTTP/2 watches, the Keystone gate.
    assert.deepEqual(f.k8s?.rateLimit, { requestsPerSecond: 20, burst: 40 });
    assert.deepEqual(f.docker?.rateLimit, { requestsPerSecond: 10, burst: 10 });
    assert.equal(f.k8s?.responseHeaderTimeoutSeconds, 120);
    assert.equal(f.docker?.responseHeaderTimeoutSeconds, 300);
    assert.equal(f.k8s?.http2Watches, true);
    assert.equal(f.k8s?.http2Requests, false);
    assert.equal(f.keystone.maxConcurrentRequests, 8);
    // Issues 23, 24, 31: images pulled always but the shared ones, subPath, RoleBinding subjects.
    assert.equal(f.k8s?.tenancy?.alwaysPullImages, true);
    assert.deepEqual(f.k8s?.tenancy?.sharedImages, ['local/busybox', `registry.example.com:5000/base/os@sha256:${'0'.repeat(64)}`]);
    assert.equal(f.k8s?.tenancy?.subPath, 'refuse');
    assert.deepEqual(f.k8s?.tenancy?.bindingSubjects, [{ kind: 'ServiceAccount', namespace: 'monitoring', name: 'prometheus' }]);
    const plain = loadedConfig(defaults);
    assert.deepEqual(
      [plain.k8s?.tenancy?.alwaysPullImages, plain.k8s?.tenancy?.sharedImages, plain.k8s?.tenancy?.subPath, plain.k8s?.tenancy?.bindingSubjects],
      [true, [], 'auto', []],
    );
    assert.equal(plain.k8s?.rateLimit, undefined, 'no rate limit unless asked for');
    assert.equal(plain.k8s?.responseHeaderTimeoutSeconds, 90);
  });

  it('every ${VAR} in the configuration is an environment variable the pod takes from the credentials Secret', () => {
    assert.deepEqual(Object.fromEntries(secretEnv(defaults)), { GATEWAY_PASSWORD: { secret: 'zun-gateway-keystone', key: 'password' } });
    assert.deepEqual(Object.fromEntries(secretEnv(full)), { GATEWAY_APP_CRED_SECRET: { secret: 'gateway-keystone', key: 'secret' } });
    for (const r of [defaults, full]) {
      const refs = [...gatewayYaml(r).matchAll(/\$\{(\w+)/g)].map((m) => m[1]);
      assert.ok(refs.length > 0);
      for (const ref of refs) assert.ok(secretEnv(r).has(ref as string), `${ref} is not set from a Secret`);
    }
  });

  it('renders no secret value into a ConfigMap: password and secret keys only hold ${VAR} references', () => {
    for (const r of [defaults, full]) {
      for (const cm of r.all('ConfigMap')) {
        for (const text of Object.values(objAt(cm, 'data'))) {
          // Parsed, not validated: a credential leaked under any key is found.
          const doc: unknown = parseYaml(String(text));
          let checked = 0;
          walk(doc, (key, v) => {
            if (/password|secret|token/i.test(key)) {
              checked += 1;
              assert.match(String(v), /^\$\{[A-Z_]+\}$/, `${key} holds a value, not a reference`);
            }
          });
          assert.equal(checked, 1, 'one credential reference per configuration');
        }
      }
      for (const e of listAt(container(r), 'env')) {
        if (/PASSWORD|SECRET/.test(strAt(e, 'name'))) assert.equal(at(e, 'value'), undefined, `${strAt(e, 'name')} is a literal`);
      }
    }
  });

  it('the ClusterRole grants exactly what the gateway calls: the extras it sends, the provisioning calls, bind on the mapped roles', () => {
    for (const r of [defaults, full]) {
      assert.deepEqual(permissions(listAt(r.one('ClusterRole'), 'rules')), neededPermissions(loadedConfig(r)));
    }
    // The full values map a fifth ClusterRole: it, and only it, becomes bindable too.
    assert.ok(permissions(listAt(full.one('ClusterRole'), 'rules')).includes('rbac.authorization.k8s.io clusterroles bind zun-observer'));
    // Sanity of the derivation itself: what tenancy.ts does today, so a silently empty scan cannot pass.
    assert.deepEqual(tenancyCalls().sort(), [
      'core limitranges create', 'core limitranges get', 'core limitranges update', 'core namespaces create', 'core namespaces get', 'core namespaces patch',
      'core resourcequotas create', 'core resourcequotas get', 'core resourcequotas update',
      'rbac.authorization.k8s.io rolebindings create', 'rbac.authorization.k8s.io rolebindings delete', 'rbac.authorization.k8s.io rolebindings list',
    ]);
    assert.deepEqual(extraKeysTheGatewaySends().sort(), ['keystone-domain-id', 'keystone-project-id', 'keystone-project-name', 'keystone-scope', 'keystone-user-id']);
  });

  it('the ClusterRole shrinks with the configuration: no tenancy, no extras, no role mapping', async () => {
    const noTenancy = await render({ set: { 'config.k8s.tenancy.enabled': 'false', 'config.k8s.impersonation.extras': 'false' } });
    assert.equal(loadedConfig(noTenancy).k8s?.tenancy, undefined);
    assert.deepEqual(permissions(listAt(noTenancy.one('ClusterRole'), 'rules')), ['core groups impersonate *any*', 'core users impersonate *any*']);
    // An empty resourceNames would allow binding any ClusterRole (cluster-admin too): no mapping must mean no bind rule.
    const noMapping = await render({ set: { 'config.k8s.tenancy.roleBindings': 'null' } });
    assert.deepEqual(loadedConfig(noMapping).k8s?.tenancy?.roleBindings, {});
    const granted = permissions(listAt(noMapping.one('ClusterRole'), 'rules'));
    assert.deepEqual(granted.filter((p) => p.includes('clusterroles')), []);
    assert.deepEqual(granted, neededPermissions(loadedConfig(noMapping)));
  });

  it('binds the ClusterRole to the service account the pods run as', () => {
    for (const r of [defaults, full]) {
      const binding = r.one('ClusterRoleBinding');
      assert.equal(strAt(binding, 'roleRef', 'name'), strAt(r.one('ClusterRole'), 'metadata', 'name'));
      assert.deepEqual(listAt(binding, 'subjects'), [{ kind: 'ServiceAccount', name: strAt(podSpec(r), 'serviceAccountName'), namespace: 'zun' }]);
      assert.equal(strAt(r.one('ServiceAccount'), 'metadata', 'name'), strAt(podSpec(r), 'serviceAccountName'));
    }
  });

  it('runs non-root with a read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    for (const r of [defaults, full]) {
      const pod = objAt(podSpec(r), 'securityContext');
      const c = objAt(container(r), 'securityContext');
      assert.equal(at(c, 'runAsNonRoot'), true);
      assert.equal(at(pod, 'runAsNonRoot'), true);
      assert.ok(Number(at(c, 'runAsUser')) > 0);
      assert.equal(at(c, 'readOnlyRootFilesystem'), true);
      assert.equal(at(c, 'allowPrivilegeEscalation'), false);
      assert.equal(at(c, 'privileged'), false);
      assert.deepEqual(at(c, 'capabilities'), { drop: ['ALL'] });
      assert.equal(at(c, 'seccompProfile', 'type'), 'RuntimeDefault');
      assert.equal(at(pod, 'seccompProfile', 'type'), 'RuntimeDefault');
    }
  });

  it('probes /healthz (liveness) and /readyz (readiness) on the gateway port, over HTTPS when TLS is configured', () => {
    for (const [r, scheme] of [[defaults, 'HTTP'], [full, 'HTTPS']] as const) {
      const c = container(r);
      const port = listAt(c, 'ports').find((p) => at(p, 'name') === at(c, 'livenessProbe', 'httpGet', 'port'));
      assert.equal(at(port, 'containerPort'), loadedConfig(r).listen.port);
      assert.deepEqual(at(c, 'livenessProbe', 'httpGet'), { path: '/healthz', port: 'gateway', scheme });
      assert.deepEqual(at(c, 'readinessProbe', 'httpGet'), { path: '/readyz', port: 'gateway', scheme });
    }
  });

  it('mounts every file the configuration names from the Secret or ConfigMap it belongs to', () => {
    const f = loadedConfig(full);
    const tls = f.listen.tls as Obj | undefined;
    const files: Record<string, string> = {
      [String(at(tls, 'certFile'))]: 'secret gateway-tls tls.crt',
      [String(at(tls, 'keyFile'))]: 'secret gateway-tls tls.key',
      [String(at(tls, 'clientCaFile'))]: 'secret gateway-client-ca ca.crt',
      [String(f.keystone.caFile)]: 'configMap keystone-ca-bundle ca-bundle.pem',
      [String(f.docker?.tls?.caFile)]: 'secret docker-client-tls ca.pem',
      [String(f.docker?.tls?.certFile)]: 'secret docker-client-tls cert.pem',
      [String(f.docker?.tls?.keyFile)]: 'secret docker-client-tls key.pem',
    };
    for (const [file, source] of Object.entries(files)) assert.equal(fileSource(full, file), source, file);
    // The audit file's directory is a writable emptyDir (the root filesystem is read-only).
    const auditDir = path.posix.dirname('/var/log/zun-gateway/audit.jsonl');
    const mount = listAt(container(full), 'volumeMounts').find((m) => at(m, 'mountPath') === auditDir);
    assert.notEqual(at(mount, 'readOnly'), true);
    assert.ok(isObj(at(listAt(podSpec(full), 'volumes').find((v) => at(v, 'name') === at(mount, 'name')), 'emptyDir')));
  });

  it('bounds the audit volume and lets a sidecar ship the file from it (extraContainers, extraVolumes)', () => {
    const volumes = listAt(podSpec(full), 'volumes');
    assert.deepEqual(at(volumes.find((v) => at(v, 'name') === 'audit'), 'emptyDir'), { sizeLimit: '2Gi' });
    assert.deepEqual(at(volumes.find((v) => at(v, 'name') === 'shipper-state'), 'emptyDir'), {});
    const containers = listAt(podSpec(full), 'containers');
    assert.deepEqual(containers.map((c) => at(c, 'name')), ['gateway', 'audit-shipper']);
    assert.deepEqual(listAt(containers[1], 'volumeMounts').map((m) => at(m, 'name')), ['audit', 'shipper-state']);
    // The default: 1Gi when the file is chosen without a limit; no audit volume and no extra container otherwise.
    assert.equal(listAt(podSpec(defaults), 'containers').length, 1);
    assert.equal(listAt(podSpec(defaults), 'volumes').some((v) => at(v, 'name') === 'audit'), false);
  });

  it('NetworkPolicy: off by default; on, the tenant port is open, the metrics port only to metricsFrom, nothing else', async () => {
    assert.equal(defaults.all('NetworkPolicy').length, 0);
    const policy = full.one('NetworkPolicy');
    assert.deepEqual(at(policy, 'spec', 'podSelector', 'matchLabels'), at(deployment(full), 'spec', 'selector', 'matchLabels'));
    assert.deepEqual(at(policy, 'spec', 'policyTypes'), ['Ingress']);
    assert.deepEqual(at(policy, 'spec', 'ingress'), [
      { ports: [{ port: 'gateway', protocol: 'TCP' }] },
      { ports: [{ port: 'metrics', protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
    ]);
    // The ports it names are the container's.
    assert.deepEqual(listAt(container(full), 'ports').map((p) => at(p, 'name')), ['gateway', 'metrics']);
    // Enabled without metricsFrom: no rule admits anyone to the metrics port.
    const closed = (await render({ set: { 'networkPolicy.enabled': 'true' } })).one('NetworkPolicy');
    assert.deepEqual(at(closed, 'spec', 'ingress'), [{ ports: [{ port: 'gateway', protocol: 'TCP' }] }]);
  });

  it('an audit file without a size limit set gets 1Gi', async () => {
    const volumes = listAt(podSpec(await render({ set: { 'config.audit.destination': 'file', 'config.audit.volumeSizeLimit': 'null' } })), 'volumes');
    assert.deepEqual(at(volumes.find((v) => at(v, 'name') === 'audit'), 'emptyDir'), { sizeLimit: '1Gi' });
  });

  it("mounts gateway.yaml where the image's ENTRYPOINT reads it, and passes no args that would repeat it", () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
    assert.ok(entry, 'the Dockerfile has an exec-form ENTRYPOINT');
    const argv = JSON.parse(entry[1] as string) as string[];
    assert.deepEqual(argv.slice(0, 3), ['node', 'dist/src/main.js', 'serve']);
    const configFile = argv[argv.indexOf('--config') + 1] as string;
    for (const r of [defaults, full]) {
      assert.equal(fileSource(r, configFile), 'configMap zun-gateway gateway.yaml');
      assert.equal(at(container(r), 'args'), undefined);
      assert.equal(at(container(r), 'command'), undefined);
    }
  });

  it('the pod template carries a checksum of the ConfigMap: a config change rolls the pods, other changes do not', async () => {
    const checksum = (r: Rendered) => strAt(deployment(r), 'spec', 'template', 'metadata', 'annotations', 'checksum/config');
    const [debug, quota, scaled] = await Promise.all([
      render({ set: { 'config.log.level': 'debug' } }),
      render({ set: { 'config.k8s.tenancy.resourceQuota.pods': '10' } }),
      render({ set: { replicaCount: '5' } }),
    ]);
    assert.match(checksum(defaults), /^[0-9a-f]{64}$/);
    assert.notEqual(checksum(debug), checksum(defaults));
    assert.notEqual(checksum(quota), checksum(defaults));
    assert.notEqual(checksum(quota), checksum(debug));
    assert.equal(checksum(scaled), checksum(defaults));
  });

  it('gives the pods longer to terminate than the gateway drains (plus the preStop pause)', () => {
    for (const r of [defaults, full]) {
      const grace = loadedConfig(r).shutdown.graceSeconds;
      const preStop = Number(at(listAt(container(r), 'lifecycle', 'preStop', 'exec', 'command'), 1));
      assert.ok(Number(at(podSpec(r), 'terminationGracePeriodSeconds')) > grace + preStop);
    }
  });

  it('alerts (optional PrometheusRule) on connections near the descriptor limit, Keystone errors and revocation falling behind', async () => {
    assert.equal(defaults.all('PrometheusRule').length, 0, 'off by default');
    const r = await render({ set: { 'prometheusRule.enabled': 'true', 'prometheusRule.openConnectionsRatio': '0.7' } });
    const rules = listAt(r.one('PrometheusRule'), 'spec', 'groups', 0, 'rules');
    const byName = new Map(rules.map((rule) => [at(rule, 'alert'), String(at(rule, 'expr'))]));
    assert.equal(byName.get('ZunGatewayConnectionsNearDescriptorLimit'), 'zun_gateway_open_connections / zun_gateway_process_max_fds > 0.7');
    assert.match(byName.get('ZunGatewayKeystoneErrors') ?? '', /zun_gateway_keystone_errors_total/);
    assert.match(byName.get('ZunGatewayRevocationBehind') ?? '', /zun_gateway_revocation_last_success_timestamp_seconds/);
  });

  it('exposes metrics only on their own ClusterIP Service, which the ServiceMonitor selects', () => {
    for (const r of [defaults, full]) {
      const services = r.all('Service');
      const metrics = services.find((s) => listAt(s, 'spec', 'ports').some((p) => at(p, 'targetPort') === 'metrics'));
      const main = services.find((s) => s !== metrics);
      assert.equal(at(metrics, 'spec', 'type'), 'ClusterIP');
      assert.deepEqual(listAt(main, 'spec', 'ports').map((p) => at(p, 'targetPort')), ['gateway']);
      const podPort = listAt(container(r), 'ports').find((p) => at(p, 'name') === 'metrics');
      assert.equal(at(podPort, 'containerPort'), at(configData(r), 'metrics', 'port'));
      assert.equal(typeof at(podPort, 'containerPort'), 'number');
    }
    assert.equal(defaults.all('ServiceMonitor').length, 0, 'off by default');
    const sm = full.one('ServiceMonitor');
    const metricsService = full.all('Service').find((s) => at(s, 'metadata', 'name') === 'zun-gateway-metrics');
    for (const [k, v] of Object.entries(objAt(sm, 'spec', 'selector', 'matchLabels'))) assert.equal(at(metricsService, 'metadata', 'labels', k), v);
    const mainService = full.one('Service', 'zun-gateway');
    assert.ok(Object.entries(objAt(sm, 'spec', 'selector', 'matchLabels')).some(([k, v]) => at(mainService, 'metadata', 'labels', k) !== v), 'selects only the metrics Service');
    assert.equal(at(sm, 'spec', 'endpoints', 0, 'port'), 'metrics');
    assert.equal(at(sm, 'spec', 'endpoints', 0, 'path'), '/metrics');
  });

  it('scales with the HPA (the Deployment then sets no replicas) and keeps replicas up with the PDB', () => {
    assert.equal(at(deployment(defaults), 'spec', 'replicas'), 2);
    assert.equal(at(deployment(full), 'spec', 'replicas'), undefined);
    const hpa = full.one('HorizontalPodAutoscaler');
    assert.equal(strAt(hpa, 'apiVersion'), 'autoscaling/v2');
    assert.deepEqual(at(hpa, 'spec', 'scaleTargetRef'), { apiVersion: 'apps/v1', kind: 'Deployment', name: strAt(deployment(full), 'metadata', 'name') });
    // Scaling in ends the sessions of the pods removed: one pod per 5 minutes, after 10 minutes of lower load.
    assert.deepEqual(at(hpa, 'spec', 'behavior'), { scaleDown: { stabilizationWindowSeconds: 600, policies: [{ type: 'Pods', value: 1, periodSeconds: 300 }] } });
    for (const r of [defaults, full]) {
      const podLabels = objAt(deployment(r), 'spec', 'template', 'metadata', 'labels');
      for (const [k, v] of Object.entries(objAt(r.one('PodDisruptionBudget'), 'spec', 'selector', 'matchLabels'))) assert.equal(podLabels[k], v);
    }
  });

  it('speaks the API versions of older clusters: autoscaling/v2beta2 and policy/v1beta1 on 1.20', async () => {
    const old = await render({ valuesFiles: [FULL_VALUES], kubeVersion: 'v1.20.2' });
    assert.equal(strAt(old.one('HorizontalPodAutoscaler'), 'apiVersion'), 'autoscaling/v2beta2');
    assert.equal(strAt(old.one('PodDisruptionBudget'), 'apiVersion'), 'policy/v1beta1');
    assert.equal(strAt(full.one('PodDisruptionBudget'), 'apiVersion'), 'policy/v1');
  });

  it('documents every value in the chart README, and nothing that is not a value', () => {
    // Maps whose keys are free-form (or documented as one value) end the walk.
    const whole = new Set(['config.k8s.tenancy.roleBindings', 'probes.liveness', 'probes.readiness', 'resources', 'podSecurityContext', 'securityContext', 'autoscaling.behavior']);
    const keys: string[] = [];
    const collect = (value: unknown, prefix: string): void => {
      if (isObj(value) && Object.keys(value).length > 0 && !whole.has(prefix)) {
        for (const [k, v] of Object.entries(value)) collect(v, prefix === '' ? k : `${prefix}.${k}`);
      } else keys.push(prefix);
    };
    collect(parseYaml(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')), '');
    const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
    const documented = [...readme.matchAll(/^\| `([A-Za-z0-9_.]+)` \|/gm)].map((m) => m[1] as string);
    assert.deepEqual([...documented].sort(), [...keys].sort());
  });

  it('registers the pod security webhook: Fail, no side effects, pods, ephemeral containers, Services and RoleBindings in the namespaces the gateway labels, through the Service', () => {
    const hook = objAt(listAt(full.one('ValidatingWebhookConfiguration'), 'webhooks'), 0);
    assert.equal(strAt(full.one('ValidatingWebhookConfiguration'), 'metadata', 'name'), 'zun-zun-gateway-pods');
    assert.equal(at(hook, 'failurePolicy'), 'Fail');
    assert.equal(at(hook, 'sideEffects'), 'None');
    assert.deepEqual(at(hook, 'admissionReviewVersions'), ['v1']);
    assert.equal(at(hook, 'timeoutSeconds'), 5);
    assert.deepEqual(at(hook, 'namespaceSelector'), { matchExpressions: [{ key: POD_SECURITY_LABEL, operator: 'Exists' }] });
    assert.deepEqual(at(hook, 'rules'), [
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' },
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' },
      { apiGroups: ['rbac.authorization.k8s.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['rolebindings'], scope: 'Namespaced' },
    ]);
    const service = full.one('Service', 'zun-gateway');
    assert.deepEqual(at(hook, 'clientConfig', 'service'), {
      name: 'zun-gateway',
      namespace: 'zun',
      port: at(listAt(service, 'spec', 'ports')[0], 'port'),
      path: POD_ADMISSION_PATH,
    });
    assert.match(strAt(hook, 'clientConfig', 'caBundle'), /^LS0tLS1CRUdJTi/);
    assert.equal(loadedConfig(full).k8s?.tenancy?.podSecurity.level, 'restricted', 'the gateway enforces the level the values name');
    assert.equal(loadedConfig(defaults).k8s?.tenancy?.podSecurity.level, 'baseline');
  });

  it('registers the image pull webhook: mutating, Fail, reinvoked, pods and ephemeral containers in the same namespaces, through the Service', () => {
    const config = full.one('MutatingWebhookConfiguration');
    assert.equal(strAt(config, 'metadata', 'name'), 'zun-zun-gateway-image-pull');
    const hook = objAt(listAt(config, 'webhooks'), 0);
    const validating = objAt(listAt(full.one('ValidatingWebhookConfiguration'), 'webhooks'), 0);
    assert.equal(at(hook, 'failurePolicy'), 'Fail');
    assert.equal(at(hook, 'sideEffects'), 'None');
    assert.equal(at(hook, 'reinvocationPolicy'), 'IfNeeded');
    assert.deepEqual(at(hook, 'admissionReviewVersions'), ['v1']);
    assert.equal(at(hook, 'timeoutSeconds'), 5);
    assert.deepEqual(at(hook, 'namespaceSelector'), at(validating, 'namespaceSelector'));
    assert.deepEqual(at(hook, 'rules'), [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' }]);
    assert.deepEqual(at(hook, 'clientConfig'), { ...objAt(validating, 'clientConfig'), service: { ...objAt(validating, 'clientConfig', 'service'), path: IMAGE_PULL_ADMISSION_PATH } });
  });

  it('no webhook when it is turned off, without tenancy, or without TLS (the apiserver calls webhooks over HTTPS only; NOTES warns); no mutating one without alwaysPullImages', async () => {
    const tls = { 'tls.secretName': 'gateway-tls' };
    const hooks = (r: Rendered) => [...r.all('ValidatingWebhookConfiguration'), ...r.all('MutatingWebhookConfiguration')].map((o) => o.kind);
    assert.deepEqual(hooks(await render({ set: tls })), ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'], 'on by default');
    assert.deepEqual(hooks(await render({ set: { ...tls, 'admissionWebhook.enabled': 'false' } })), []);
    assert.deepEqual(hooks(await render({ set: { ...tls, 'config.k8s.tenancy.enabled': 'false' } })), []);
    assert.deepEqual(hooks(defaults), []);
    const cached = await render({ set: { ...tls, 'config.k8s.tenancy.alwaysPullImages': 'false' } });
    assert.deepEqual(hooks(cached), ['ValidatingWebhookConfiguration']);
    assert.equal(loadedConfig(cached).k8s?.tenancy?.alwaysPullImages, false, 'and the gateway is told');
  });

  describe('flowControl: API Priority and Fairness for the tenants, whichever replica they enter by', () => {
    const on = (kubeVersion: string, set: Record<string, string> = {}): Promise<Rendered> =>
      render({ kubeVersion, set: { 'flowControl.enabled': 'true', ...set } });

    it('off by default: no FlowSchema, no priority level, no tenant group in the configuration', () => {
      assert.deepEqual(defaults.all('FlowSchema'), []);
      assert.deepEqual(defaults.all('PriorityLevelConfiguration'), []);
      assert.equal(loadedConfig(defaults).k8s?.impersonation.tenantGroup, undefined);
    });

    for (const [kube, api, shares] of [
      ['v1.20.2', 'v1beta1', 'assuredConcurrencyShares'],
      ['v1.22.17', 'v1beta1', 'assuredConcurrencyShares'],
      ['v1.23.0', 'v1beta2', 'assuredConcurrencyShares'],
      ['v1.25.16', 'v1beta2', 'assuredConcurrencyShares'],
      ['v1.26.0', 'v1beta3', 'nominalConcurrencyShares'],
      ['v1.28.15', 'v1beta3', 'nominalConcurrencyShares'],
      ['v1.29.0', 'v1', 'nominalConcurrencyShares'],
      ['v1.33.1', 'v1', 'nominalConcurrencyShares'],
    ] as const) {
      it(`on ${kube}: flowcontrol.apiserver.k8s.io/${api}, the priority level's share as ${shares}`, async () => {
        const r = await on(kube);
        const level = r.one('PriorityLevelConfiguration');
        const schema = r.one('FlowSchema');
        for (const o of [level, schema]) assert.equal(strAt(o, 'apiVersion'), `flowcontrol.apiserver.k8s.io/${api}`);
        assert.equal(strAt(level, 'spec', 'type'), 'Limited');
        assert.deepEqual(Object.keys(objAt(level, 'spec', 'limited')).sort(), ['limitResponse', shares].sort());
        assert.equal(at(level, 'spec', 'limited', shares), 20);
        assert.deepEqual(at(level, 'spec', 'limited', 'limitResponse'), { type: 'Queue', queuing: { queues: 64, handSize: 6, queueLengthLimit: 50 } });
      });
    }

    it("matches the tenant group the gateway adds (its gateway.yaml's impersonation.tenantGroup), every request, queued fairly by user", async () => {
      const r = await on('v1.20.2');
      const schema = r.one('FlowSchema');
      const level = r.one('PriorityLevelConfiguration');
      assert.equal(strAt(schema, 'spec', 'priorityLevelConfiguration', 'name'), strAt(level, 'metadata', 'name'));
      assert.deepEqual(at(schema, 'spec', 'distinguisherMethod'), { type: 'ByUser' });
      const precedence = at(schema, 'spec', 'matchingPrecedence');
      // After the system's own schemas (exempt 1 ... kube-system-service-accounts 900), before global-default (9900).
      assert.ok(typeof precedence === 'number' && precedence > 1000 && precedence < 9900, String(precedence));
      const rules = listAt(schema, 'spec', 'rules');
      assert.equal(rules.length, 1);
      assert.deepEqual(at(rules[0], 'subjects'), [{ kind: 'Group', group: { name: 'keystone:tenants' } }]);
      assert.deepEqual(at(rules[0], 'resourceRules'), [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true }]);
      assert.deepEqual(at(rules[0], 'nonResourceRules'), [{ verbs: ['*'], nonResourceURLs: ['*'] }]);
      assert.equal(loadedConfig(r).k8s?.impersonation.tenantGroup, 'keystone:tenants');

      const other = await on('v1.20.2', { 'flowControl.tenantGroup': 'keystone:cloud-tenants', 'flowControl.distinguisherMethod': 'ByNamespace' });
      assert.deepEqual(at(other.one('FlowSchema'), 'spec', 'rules', 0, 'subjects', 0, 'group'), { name: 'keystone:cloud-tenants' });
      assert.deepEqual(at(other.one('FlowSchema'), 'spec', 'distinguisherMethod'), { type: 'ByNamespace' });
      assert.equal(loadedConfig(other).k8s?.impersonation.tenantGroup, 'keystone:cloud-tenants');
    });

    it('refuses a distinguisher the apiserver does not know and a system: tenant group', async () => {
      await assert.rejects(on('v1.20.2', { 'flowControl.distinguisherMethod': 'ByProject' }), /flowControl\.distinguisherMethod must be ByUser or ByNamespace/);
      await assert.rejects(on('v1.20.2', { 'flowControl.tenantGroup': 'system:authenticated' }), /flowControl\.tenantGroup must be set and must not start with system:/);
    });
  });

  describe('several clusters (config.k8s.clusters) and what each other cluster needs (remoteCluster)', () => {
    const CLUSTERS_VALUES = path.join(REPO_ROOT, 'test/chart/values-clusters.yaml');
    const remote = (set: Record<string, string>): Promise<Rendered> =>
      render({ valuesFiles: [CLUSTERS_VALUES], set, showOnly: ['templates/remote-cluster.yaml'] });
    let clusters: Rendered;
    let west: Rendered;
    before(async () => {
      [clusters, west] = await Promise.all([
        render({ valuesFiles: [CLUSTERS_VALUES] }),
        remote({ 'remoteCluster.name': 'west', 'remoteCluster.webhookUrl': 'https://gateway.example:8443/', 'remoteCluster.webhookCaBundle': 'Q0E=' }),
      ]);
    });

    it("renders each cluster into gateway.yaml with the path of its kubeconfig Secret's key, mounted read-only from that Secret", () => {
      const k8s = loadedConfig(clusters).k8s;
      assert.deepEqual(
        k8s?.clusters.map((c) => [c.name, c.kubeconfig, c.context, c.projectTags, c.http2Watches, c.responseHeaderTimeoutSeconds]),
        [
          ['west', '/etc/zun-gateway/clusters/west/kubeconfig', undefined, ['west'], true, 90],
          ['east', undefined, undefined, undefined, true, 90],
          ['north', '/etc/zun-gateway/clusters/north/config', 'gateway@north', undefined, false, 30],
        ],
      );
      // The shared mapping is the chart's default merged with the values file's (helm merges maps).
      const shared = { admin: 'admin', member: 'edit', reader: 'view' };
      assert.deepEqual(k8s?.clusters.map((c) => c.tenancy?.roleBindings), [{ admin: 'west-admin', member: 'west-edit' }, shared, shared]);
      assert.equal(fileSource(clusters, '/etc/zun-gateway/clusters/west/kubeconfig'), 'secret zun-gateway-west kubeconfig');
      assert.equal(fileSource(clusters, '/etc/zun-gateway/clusters/north/config'), 'secret north-access config');
      for (const m of listAt(container(clusters), 'volumeMounts').filter((v) => String(at(v, 'mountPath')).startsWith('/etc/zun-gateway/clusters/'))) {
        assert.equal(at(m, 'readOnly'), true);
      }
      // Without clusters: no such mount, one cluster named default.
      assert.equal(listAt(container(defaults), 'volumeMounts').some((v) => String(at(v, 'mountPath')).startsWith('/etc/zun-gateway/clusters')), false);
      assert.deepEqual(loadedConfig(defaults).k8s?.clusters.map((c) => c.name), ['default']);
    });

    it("the release's ClusterRole and webhooks are those of the cluster it runs in: its role mapping, its own webhook paths", () => {
      const config = loadedConfig(clusters);
      assert.deepEqual(permissions(listAt(clusters.one('ClusterRole'), 'rules')), neededPermissions(config, 'east'));
      assert.ok(!permissions(listAt(clusters.one('ClusterRole'), 'rules')).some((p) => p.includes('west-')), "west's roles are bound on west only");
      const own = clusterAdmissionPaths('east');
      assert.equal(at(clusters.one('ValidatingWebhookConfiguration'), 'webhooks', 0, 'clientConfig', 'service', 'path'), own.pods);
      assert.equal(at(clusters.one('MutatingWebhookConfiguration'), 'webhooks', 0, 'clientConfig', 'service', 'path'), own.imagePull);
      // Remote clusters are not the release's: nothing of them is rendered without remoteCluster.name.
      assert.deepEqual(clusters.all('Secret'), []);
      assert.equal(clusters.all('ClusterRole').length, 1);
    });

    it('refuses two clusters without kubeconfigSecret, an item without a name, and a per-cluster tenancy without tenancy', async () => {
      await assert.rejects(
        render({ set: { 'config.k8s.clusters[0].name': 'east', 'config.k8s.clusters[1].name': 'west' } }),
        /config\.k8s\.clusters: only one cluster may have no kubeconfigSecret/,
      );
      await assert.rejects(render({ set: { 'config.k8s.clusters[0].context': 'x' } }), /config\.k8s\.clusters\[0\]\.name is required/);
      await assert.rejects(
        render({ set: { 'config.k8s.tenancy.enabled': 'false', 'config.k8s.clusters[0].name': 'east', 'config.k8s.clusters[0].tenancy.recheckSeconds': '60' } }),
        /config\.k8s\.clusters\[0\]\.tenancy changes config\.k8s\.tenancy for one cluster, but config\.k8s\.tenancy\.enabled is false/,
      );
    });

    it("remoteCluster.name renders, alone, a ServiceAccount, its token Secret, a ClusterRole with that cluster's role mapping and its binding", () => {
      assert.deepEqual(west.objects.map((o) => o.kind).sort(), [
        'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'Secret', 'ServiceAccount', 'ValidatingWebhookConfiguration',
      ]);
      const sa = west.one('ServiceAccount');
      assert.deepEqual([strAt(sa, 'metadata', 'name'), strAt(sa, 'metadata', 'namespace'), at(sa, 'automountServiceAccountToken')], ['zun-gateway', 'zun', false]);
      const token = west.one('Secret');
      assert.equal(strAt(token, 'type'), 'kubernetes.io/service-account-token');
      assert.equal(strAt(token, 'metadata', 'annotations', 'kubernetes.io/service-account.name'), 'zun-gateway');
      assert.equal(at(token, 'data'), undefined, 'the cluster fills the token in; the chart renders no secret value');
      const granted = permissions(listAt(west.one('ClusterRole'), 'rules'));
      assert.deepEqual(granted, neededPermissions(loadedConfig(clusters), 'west'));
      assert.deepEqual(granted.filter((p) => p.includes('clusterroles bind')), [
        'rbac.authorization.k8s.io clusterroles bind west-admin', 'rbac.authorization.k8s.io clusterroles bind west-edit',
      ]);
      const binding = west.one('ClusterRoleBinding');
      assert.deepEqual(at(binding, 'roleRef'), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: strAt(west.one('ClusterRole'), 'metadata', 'name') });
      assert.deepEqual(at(binding, 'subjects'), [{ kind: 'ServiceAccount', name: 'zun-gateway', namespace: 'zun' }]);
    });

    it("remoteCluster's webhooks call the gateway at webhookUrl, at that cluster's own paths, with the release's rules", () => {
      const own = clusterAdmissionPaths('west');
      const validating = objAt(listAt(west.one('ValidatingWebhookConfiguration'), 'webhooks'), 0);
      const local = objAt(listAt(clusters.one('ValidatingWebhookConfiguration'), 'webhooks'), 0);
      assert.deepEqual(at(validating, 'clientConfig'), { url: `https://gateway.example:8443${own.pods}`, caBundle: 'Q0E=' });
      for (const key of ['rules', 'namespaceSelector', 'failurePolicy', 'sideEffects', 'matchPolicy', 'name', 'admissionReviewVersions']) {
        assert.deepEqual(at(validating, key), at(local, key), key);
      }
      const mutating = objAt(listAt(west.one('MutatingWebhookConfiguration'), 'webhooks'), 0);
      const localMutating = objAt(listAt(clusters.one('MutatingWebhookConfiguration'), 'webhooks'), 0);
      assert.deepEqual(at(mutating, 'clientConfig'), { url: `https://gateway.example:8443${own.imagePull}`, caBundle: 'Q0E=' });
      for (const key of ['rules', 'namespaceSelector', 'reinvocationPolicy', 'name']) assert.deepEqual(at(mutating, key), at(localMutating, key), key);
    });

    it('remoteCluster: webhookUrl required with tenancy and the webhook on; a name that is not a remote cluster refused', async () => {
      await assert.rejects(remote({ 'remoteCluster.name': 'west' }), /remoteCluster\.webhookUrl must be the gateway's https:\/\/ URL as the apiserver of west reaches it/);
      await assert.rejects(remote({ 'remoteCluster.name': 'west', 'remoteCluster.webhookUrl': 'http://gateway.example' }), /remoteCluster\.webhookUrl must be/);
      const noHook = await remote({ 'remoteCluster.name': 'west', 'admissionWebhook.enabled': 'false' });
      assert.deepEqual(noHook.objects.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Secret', 'ServiceAccount']);
      const north = await remote({ 'remoteCluster.name': 'north', 'config.k8s.tenancy.alwaysPullImages': 'false', 'remoteCluster.webhookUrl': 'https://gw.example' });
      assert.deepEqual(north.objects.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Secret', 'ServiceAccount', 'ValidatingWebhookConfiguration']);
      assert.ok(permissions(listAt(north.one('ClusterRole'), 'rules')).includes('rbac.authorization.k8s.io clusterroles bind edit'), "north's mapping is the shared one");
      await assert.rejects(remote({ 'remoteCluster.name': 'south' }), /remoteCluster\.name south is not a cluster of config\.k8s\.clusters/);
      await assert.rejects(remote({ 'remoteCluster.name': 'east' }), /remoteCluster\.name east has no kubeconfigSecret/);
    });
  });

  it('refuses values it cannot honour, saying which', async () => {
    await assert.rejects(render({ set: { 'tls.clientCa.secretName': 'ca' } }), /tls\.clientCa needs tls\.secretName/);
    await assert.rejects(render({ set: { 'keystone.credentials.type': 'token' } }), /keystone\.credentials\.type must be password or applicationCredential/);
    await assert.rejects(render({ set: { 'config.docker.enabled': 'true', 'config.docker.host': 'unix:///var/run/docker.sock' } }), /tcp:\/\//);
    await assert.rejects(render({ set: { 'config.audit.destination': 'syslog' } }), /stdout, file or off/);
  });
});
