import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HEAP_GROWING_PERCENT } from '../../src/gateway/heap-headroom.js';
import { deadKeystoneConfig, runServe, stopServes } from '../helpers/serve-process.js';

describe('old-generation headroom (V8 heap growing factor) in the serving process', function () {
  // It starts a gateway process (node and the server's modules, with V8's GC trace): seconds on a busy two-core machine.
  this.timeout(60_000);
  afterEach(stopServes);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-heap-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the old-generation limit the gateway starts serving with is set with the pinned growing factor', async () => {
    const config = deadKeystoneConfig(dir);
    // Until it listens, with V8's heap-controller trace.
    const { out } = await runServe(config, {}, /"gateway listening"/, ['--trace-gc-verbose']);
    const untilListening = out.slice(0, out.indexOf('"gateway listening"'));
    // "[HeapController] Limit: old size: 43771 KB, new limit: 103650 KB (2.0)", one per full collection.
    const limits = [...untilListening.matchAll(/\[HeapController\] Limit: old size: (\d+) KB, new limit: (\d+) KB \(([\d.]+)\)/g)].map((m) => ({
      live: Number(m[1]),
      limit: Number(m[2]),
      factor: Number(m[3]),
    }));
    assert.ok(limits.length > 0, `V8 printed no heap limits before the gateway listened:\n${out.slice(-2000)}`);
    // The gateway's modules (about 40 MB of heap) load after the setting, so the collection they cause, the last one
    // before listening, sets the limit the running gateway starts from.
    const last = limits[limits.length - 1]!;
    assert.equal(last.factor, 1 + HEAP_GROWING_PERCENT / 100, `limits computed: ${JSON.stringify(limits)}`);
    // Headroom above the young generation (16 MB): a young collection does not start a full mark at once.
    assert.ok(last.limit - last.live > 16 * 1024, `headroom ${last.limit - last.live} KB above a live heap of ${last.live} KB`);
  });
});
