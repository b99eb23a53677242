import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { DockerUser } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken } from './support/keystone.js';
import { kubectl, mustSucceed, tenantKubeconfig } from './support/kubectl.js';

/** A TLS connection to the gateway that finished its handshake; resolves when the gateway closes it, with what it sent. */
async function openTls(port: number): Promise<{ socket: tls.TLSSocket; closed: Promise<string> }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(e2eEnv().tlsCa) });
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed };
}

/**
 * Issue 31 on a gateway process: connections that finish TLS and then send nothing, or one byte, are closed within
 * the bound (set short here: a first byte within 2 s, a head within 4 s), while a tenant's kubectl and docker keep
 * being served through the same listener.
 */
describe('connections are bounded from accept (real gateway process, kubectl, docker CLI)', function () {
  this.timeout(120_000);
  let gw: GatewayProcess;

  before(async () => {
    gw = await startGateway({ cacheTtlSeconds: 300, listen: ['firstByteTimeoutSeconds: 2', 'headersTimeoutSeconds: 4'] });
  });
  after(async () => {
    await gw.stop();
  });

  it('silent and one-byte TLS connections are closed (the one-byte one with a 408) while alice is served', async () => {
    const silent = await Promise.all(Array.from({ length: 20 }, () => openTls(gw.port)));
    const oneByte = await Promise.all(Array.from({ length: 5 }, () => openTls(gw.port)));
    for (const c of oneByte) c.socket.write('G');

    const alice = await issueToken('alice', 'alpha');
    const config = tenantKubeconfig(gw.url, alice.token, 'os-alpha');
    await mustSucceed(kubectl(config, ['get', 'pods']), 'kubectl get pods while connections are held');
    const docker = new DockerUser(gw.port, { 'X-Auth-Token': alice.token });
    const ps = await docker.docker(['ps']);
    assert.equal(ps.code, 0, ps.stderr);

    const silentAnswers = await Promise.all(silent.map((c) => c.closed));
    assert.ok(silentAnswers.every((a) => a === ''), 'a silent connection is closed without an answer');
    const oneByteAnswers = await Promise.all(oneByte.map((c) => c.closed));
    for (const answer of oneByteAnswers) assert.match(answer, /^HTTP\/1\.1 408 [^]*the request's headers did not arrive within 4 s/);

    // Still serving after all that.
    await mustSucceed(kubectl(config, ['get', 'pods']), 'kubectl get pods after');
  });
});
