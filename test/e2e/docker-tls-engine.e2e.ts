import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { httpsGet, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';

/**
 * The Docker engine as it usually runs beside a gateway in production: remote, on tcp:// with TLS, requiring a client
 * certificate (dockerd --tlsverify). The e2e engine listens there too; these gateways use that listener instead of
 * the unix socket, with the real docker CLI in front.
 */
describe('a Docker engine on tcp:// with TLS and client certificates (real dockerd --tlsverify, docker CLI)', function () {
  this.timeout(120_000);
  const name = `tls-engine-${randomBytes(3).toString('hex')}`;
  const gateways: GatewayProcess[] = [];
  const gatewayFor = async (tls: { caFile?: string; certFile?: string; keyFile?: string }): Promise<GatewayProcess> => {
    const gw = await startGateway({ cacheTtlSeconds: 300, dockerEngine: { host: e2eEnv().dockerTls.host, tls } });
    gateways.push(gw);
    return gw;
  };
  const userOf = async (gw: GatewayProcess, user: 'alice' | 'bob', project: 'alpha' | 'beta'): Promise<DockerUser> =>
    new DockerUser(gw.port, { 'X-Auth-Token': (await issueToken(user, project)).token });

  after(async function () {
    this.timeout(60_000);
    await engineDocker(['rm', '-f', name]);
    for (const gw of gateways) await gw.stop();
  });

  it('run, ps, logs -f, exec -i (a hijacked stream over TLS), cp and rm work through it; another tenant sees nothing', async () => {
    const { tlsCa, dockerTls } = e2eEnv();
    const gw = await gatewayFor({ caFile: tlsCa, certFile: dockerTls.clientCert, keyFile: dockerTls.clientKey });
    assert.equal((await httpsGet(`${gw.url}/readyz`))?.status, 200, 'ready: the engine answers over TLS');
    const alice = await userOf(gw, 'alice', 'alpha');
    const ok = async (args: string[], input?: string): Promise<string> => {
      const r = await alice.docker(args, input !== undefined ? { input } : {});
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
      return r.stdout;
    };
    await ok(['run', '-d', '--name', name, e2eEnv().busyboxImage, 'sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done']);
    assert.deepEqual((await ok(['ps', '--filter', `name=${name}`, '--format', '{{.Names}}'])).trim().split('\n'), [name]);

    const logs = alice.background(['logs', '-f', name]);
    try {
      await logs.waitFor((out) => /tick-2\n/.test(out), 20_000, 'logs -f over the TLS engine');
    } finally {
      await logs.stop();
    }
    assert.equal(await ok(['exec', '-i', name, 'sh', '-c', 'cat; echo end-of-stdin'], 'hello over tls\n'), 'hello over tls\nend-of-stdin\n');
    const dir = mkdtempSync('/tmp/zgw-tls-cp-');
    writeFileSync(`${dir}/note.txt`, 'copied in\n');
    await ok(['cp', `${dir}/note.txt`, `${name}:/tmp/note.txt`]);
    assert.equal(await ok(['exec', name, 'cat', '/tmp/note.txt']), 'copied in\n');

    const bob = await userOf(gw, 'bob', 'beta');
    const bobPs = await bob.docker(['ps', '-a', '--format', '{{.Names}}']);
    assert.equal(bobPs.code, 0, bobPs.stderr);
    assert.ok(!bobPs.stdout.includes(name), `bob sees alice's container: ${bobPs.stdout}`);
    const bobLogs = await bob.docker(['logs', name]);
    assert.notEqual(bobLogs.code, 0);
    assert.match(bobLogs.stderr, /No such container/);

    await ok(['rm', '-f', name]);
  });

  it("fails closed when the engine's certificate is not from the configured CA: nothing is served, /readyz says why", async () => {
    const { kubeCa, dockerTls } = e2eEnv();
    // The apiserver's CA did not sign the engine's certificate.
    const gw = await gatewayFor({ caFile: kubeCa, certFile: dockerTls.clientCert, keyFile: dockerTls.clientKey });
    const ready = await httpsGet(`${gw.url}/readyz`);
    assert.equal(ready?.status, 503, "the gateway's own CA setting is refused: a rollout must not pass");
    const docker = (JSON.parse(ready?.body ?? '{}') as { checks: Record<string, { ok: boolean; detail: string; blocking?: boolean }> }).checks.docker;
    assert.equal(docker?.blocking, true);
    assert.match(docker?.detail ?? '', /^engine unreachable \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|DEPTH_ZERO_SELF_SIGNED_CERT|ERR_TLS_CERT_ALTNAME_INVALID)\)$/);
    const ps = await (await userOf(gw, 'alice', 'alpha')).docker(['ps']);
    assert.notEqual(ps.code, 0);
    assert.match(ps.stderr, /upstream unreachable: \S+ \(the upstream's TLS certificate was not accepted/);
  });

  it('without the client certificate the engine refuses the gateway, and tenants are told the engine is unreachable', async () => {
    const gw = await gatewayFor({ caFile: e2eEnv().tlsCa });
    // A connection closed by the engine looks the same as an engine in trouble, which every replica would share:
    // reported, but the gateway stays ready (the /k8s mount still serves).
    const ready = await httpsGet(`${gw.url}/readyz`);
    assert.equal(ready?.status, 200);
    const docker = (JSON.parse(ready?.body ?? '{}') as { checks: Record<string, { ok: boolean; detail: string; blocking?: boolean }> }).checks.docker;
    assert.equal(docker?.ok, false);
    assert.equal(docker?.blocking, undefined);
    const ps = await (await userOf(gw, 'alice', 'alpha')).docker(['ps']);
    assert.notEqual(ps.code, 0);
    assert.match(ps.stderr, /upstream unreachable: \S+ \(the upstream closed the connection before answering/);
  });
});
