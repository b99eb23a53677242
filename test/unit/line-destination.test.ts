import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

  it('holds a few lines back, then writes them within about a second', async () => {
    const file = path.join(dir, 'out.log');
    const out = batchedLines(file);
    out.write('{"a":1}\n');
    assert.equal(read(file), '', 'one short line is queued, not written at once');
    const deadline = Date.now() + 3000;
    while (read(file) === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(read(file), '{"a":1}\n');
    out.end();
  });

  it('writes as soon as a batch is full', () => {
    const file = path.join(dir, 'out.log');
    const out = batchedLines(file);
    const line = `${JSON.stringify({ pad: 'x'.repeat(500) })}\n`;
    for (let i = 0; i < 20; i++) out.write(line);
    assert.ok(read(file).length >= 4096, 'more than a batch went out without waiting');
    out.flushSync();
    assert.equal(read(file), line.repeat(20), 'in order, nothing lost');
    out.end();
  });

  it('writes what is queued when the process exits', () => {
    const file = path.join(dir, 'out.log');
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { const o = m.batchedLines(${JSON.stringify(file)}); o.write('last words\\n'); process.exit(0); });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: path.dirname(fileURLToPath(import.meta.url)) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(read(file), 'last words\n');
  });
});
