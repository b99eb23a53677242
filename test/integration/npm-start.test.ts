import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { deadKeystoneConfig } from '../helpers/serve-process.js';

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('`npm start` (the README quick start)', function () {
  // npm, then node and the gateway's modules: about ten seconds on a busy two-core machine.
  this.timeout(90_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-npm-start-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('SIGTERM to npm (what `kill`, systemd or a container runtime sends) shuts the gateway down instead of orphaning it', async () => {
    const config = deadKeystoneConfig(dir, ['shutdown: {graceSeconds: 1}']);
    // --ignore-scripts skips prestart (the build, done by `npm test` already), not start itself. Its own process
    // group, so that whatever is left is killed at the end whatever the outcome.
    const npm = spawn('npm', ['start', '--ignore-scripts', '--silent'], {
      cwd: process.cwd(),
      env: { ...process.env, ZUN_GATEWAY_CONFIG: config },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    try {
      // npm's output pipes stay open for as long as anything it started holds them: the gateway too.
      const pipesClosed = Promise.all([npm.stdout, npm.stderr].map((p) => new Promise((resolve) => p.once('close', resolve))));
      const port = await new Promise<number>((resolve, reject) => {
        const read = (chunk: Buffer): void => {
          out += chunk.toString('utf8');
          const m = /"port":(\d+),"tls":false,"msg":"gateway listening"/.exec(out);
          if (m) resolve(Number(m[1]));
        };
        npm.stdout.on('data', read);
        npm.stderr.on('data', read);
        npm.once('exit', () => reject(new Error(`npm exited before the gateway listened:\n${out}`)));
      });
      assert.equal(await accepts(port), true);
      const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
      process.kill(npm.pid as number, 'SIGTERM');
      await exited;
      // npm is gone; the gateway must be too (it had 1 s of grace and nothing in flight): once it has exited, nothing
      // holds npm's pipes. An orphaned gateway would hold them, and this wait would meet mocha's timeout.
      await pipesClosed;
      assert.equal(await accepts(port), false, `the gateway still listens on ${port} after npm exited\n${out}`);
      assert.match(out, /"signal":"SIGTERM","msg":"signal received"/);
    } finally {
      try {
        process.kill(-(npm.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
});
