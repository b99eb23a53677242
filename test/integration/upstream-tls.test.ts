import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Upstream } from '../../src/proxy/upstream.js';
import { selfSignedCert } from '../helpers/gateway.js';

/**
 * The upstream's TLS material is turned into one secure context, shared by every connection: built per connection
 * (what Node does when handed `ca`/`cert`/`key`), it parsed the CA bundle for each watch and exec and held a
 * certificate store per connection (docs/performance.md, scenario 4).
 */
describe('upstream TLS connections', function () {
  let dir: string;
  let server: https.Server;
  let ca: Buffer;
  let upstream: Upstream;
  const original = tls.createSecureContext;
  let built = 0;

  before(async function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-upstream-tls-'));
    const { cert, key } = selfSignedCert(dir);
    ca = readFileSync(cert);
    // Every request closes its connection, so each one below is a new TLS connection.
    server = https.createServer({ cert: ca, key: readFileSync(key) }, (_req, res) => res.writeHead(200, { connection: 'close' }).end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tls.createSecureContext = (options) => {
      built += 1;
      return original(options);
    };
    upstream = new Upstream(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca, rejectUnauthorized: true });
  });

  after(async function () {
    tls.createSecureContext = original;
    upstream.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds one secure context for the pool and the agents, not one per connection', async function () {
    assert.equal(built, 1, 'the upstream builds its context once');
    for (let i = 0; i < 3; i += 1) {
      const answer = await upstream.pool.request({ origin: upstream.origin, path: '/', method: 'GET' });
      assert.equal(answer.statusCode, 200);
      assert.equal(await answer.body.text(), 'ok');
    }
    const own = await upstream.calls.request({ path: '/', method: 'GET' });
    assert.equal(await own.body.text(), 'ok');
    await new Promise<void>((resolve, reject) => {
      const req = upstream.request(upstream.upgradeOptions('GET', '/', ['Host', upstream.hostHeader]));
      req.on('response', (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end();
    });
    assert.equal(built, 1, `${built - 1} connections built secure contexts of their own`);
  });

  it('still verifies the upstream against the configured CA', async function () {
    const strict = new Upstream(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { rejectUnauthorized: true });
    try {
      await assert.rejects(strict.pool.request({ origin: strict.origin, path: '/', method: 'GET' }), /self-signed|self signed|unable to verify/i);
    } finally {
      strict.close();
    }
  });
});
