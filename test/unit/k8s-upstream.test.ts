import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { loadK8sUpstream } from '../../src/k8s/upstream.js';

describe('k8s.kubeconfig that cannot be used: what is wrong and what to do, in the configuration\'s words', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-kc-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const load = (cluster: Record<string, unknown>) => {
    const file = path.join(dir, `kc-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }));
    const config = parseConfig(`keystone: {authUrl: http://127.0.0.1:5000/v3, serviceCredentials: {applicationCredentialId: a, applicationCredentialSecret: s}}\nk8s: {kubeconfig: ${file}}`, {});
    return loadK8sUpstream((config.k8s as NonNullable<typeof config.k8s>).clusters[0] as NonNullable<typeof config.k8s>["clusters"][number]);
  };

  it('a plain http:// server is refused as configuration (exit 2), saying the gateway talks to the apiserver over https:// only', async () => {
    await assert.rejects(load({ server: 'http://apiserver.example:8080' }), (e: unknown) => {
      assert.ok(e instanceof GatewayError && e.code === 'config_invalid');
      assert.match(e.message, /^k8s\.kubeconfig: the cluster's server http:\/\/apiserver\.example:8080 \(in .*kc-\w+\) is plain http:\/\/: .*set the server to the apiserver's https:\/\/ address$/);
      assert.doesNotMatch(e.message, /skipTLSVerify/);
      return true;
    });
  });

  it('an https:// server loads', async () => {
    const k8s = await load({ server: 'https://apiserver.example:6443', 'insecure-skip-tls-verify': true });
    assert.equal(k8s.server, 'https://apiserver.example:6443');
    k8s.close();
  });
});
