import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import { batchedLines } from '../../src/observability/line-destination.js';

const moduleUrl = new URL('../../src/observability/line-destination.js', import.meta.url).href;
const read = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

describe('batched log and audit lines', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-lines-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('holds a few lines back, then writes them a second later', () => {
    // The flush runs on a setInterval: Node's mock timers move its clock.
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const file = path.join(dir, 'out.log');
      const out = batchedLines(file);
      out.write('{"a":1}\n');
      assert.equal(read(file), '', 'one short line is queued, not written at once');
      mock.timers.tick(999);
      assert.equal(read(file), '', 'still queued before the second is up');
      mock.timers.tick(1);
      assert.equal(read(file), '{"a":1}\n');
      out.end();
    } finally {
      mock.timers.reset();
    }
  });

  it('writes as soon as a batch is full', () => {
    const file = path.join(dir, 'out.log');
    const out = batchedLines(file);
    const line = `${JSON.stringify({ pad: 'x'.repeat(500) })}\n`;
    for (let i = 0; i < 200; i++) out.write(line);
    assert.ok(read(file).length >= 60_000, 'a full batch went out without waiting');
    out.flushSync();
    assert.equal(read(file), line.repeat(200), 'in order, nothing lost');
    out.end();
  });

  it('keeps multi-byte characters whole across batch boundaries, and writes a line longer than a batch at once', () => {
    const file = path.join(dir, 'out.log');
    const out = batchedLines(file);
    const lines = [];
    for (let i = 0; i < 3000; i++) lines.push(`${i} ${'ä€😀\uD800'.repeat(i % 7)} ${'x'.repeat(i % 13)}\n`);
    lines.push(`${'y€'.repeat(100_000)}\n`, 'after the long one\n');
    for (const l of lines) out.write(l);
    out.end();
    assert.equal(read(file), lines.join('').replace(/\uD800/g, '\uFFFD'));
  });

  it('after a rotation (reopen) writes to a new file of the same name', () => {
    const file = path.join(dir, 'sub', 'out.log');
    const out = batchedLines(file);
    out.write('before\n');
    out.flushSync();
    renameSync(file, `${file}.1`);
    out.write('queued before the signal\n');
    out.reopen();
    out.write('after\n');
    out.end();
    assert.equal(read(`${file}.1`), 'before\nqueued before the signal\n');
    assert.equal(read(file), 'after\n');
  });

  it('creates its file without access for others (audit records name users and client addresses)', () => {
    const file = path.join(dir, 'private', 'audit.log');
    const out = batchedLines(file);
    out.write('x\n');
    out.end();
    assert.equal(statSync(file).mode & 0o007, 0, `mode ${(statSync(file).mode & 0o777).toString(8)}`);
    assert.equal(statSync(file).mode & 0o600, 0o600);
  });

  it('loses nothing to a stdout pipe whose reader is slow (a full pipe stalls the writer, non-blocking stdout included)', async () => {
    // The child says on stderr when a write first met a full pipe (EAGAIN); only then does this side start reading.
    const script = [
      "import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';",
      'process.stdout;',
      'const write = fs.writeSync; let told = false;',
      "fs.writeSync = (...a) => { try { return write(...a); } catch (e) { if (e.code === 'EAGAIN' && !told) { told = true; write(2, 'pipe full\\n'); } throw e; } };",
      'syncBuiltinESMExports();',
      `import(${JSON.stringify(moduleUrl)}).then((m) => { const o = m.batchedLines(1); for (let i = 0; i < 20000; i++) o.write(i + ' ' + 'z'.repeat(100) + '\\n'); o.end(); });`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise((r) => child.on('close', r));
    child.stdout.pause();
    let stderr = '';
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        if (stderr.includes('pipe full')) resolve();
      }),
    );
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stdout.resume();
    const code = await closed;
    assert.equal(code, 0, stderr);
    const got = Buffer.concat(chunks).toString('utf8').split('\n');
    assert.equal(got.length, 20001);
    for (let i = 0; i < 20000; i += 997) assert.equal(got[i], `${i} ${'z'.repeat(100)}`);
  });

  it('stops the process when a write fails (disk full): nothing goes on unaudited', () => {
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { const o = m.batchedLines('/dev/full'); for (let i = 0; i < 2000; i++) o.write('x'.repeat(100) + '\\n'); console.error('still running'); });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: path.dirname(fileURLToPath(import.meta.url)) });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ENOSPC/);
    assert.doesNotMatch(r.stderr, /still running/);
  });

  it('writes what is queued when the process exits', () => {
    const file = path.join(dir, 'out.log');
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { const o = m.batchedLines(${JSON.stringify(file)}); o.write('last words\\n'); process.exit(0); });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: path.dirname(fileURLToPath(import.meta.url)) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(read(file), 'last words\n');
  });
});
