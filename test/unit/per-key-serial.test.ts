import assert from 'node:assert/strict';
import { PerKeySerial } from '../../src/docker/per-key-serial.js';

describe('PerKeySerial: one holder at a time per key', () => {
  it('a second holder of a key waits for the first to release; other keys do not wait; nothing is kept after', async () => {
    const serial = new PerKeySerial();
    const order: string[] = [];
    const releaseA1 = await serial.acquire('a');
    let a2Held = false;
    const a2 = serial.acquire('a').then((release) => {
      a2Held = true;
      order.push('a2');
      return release;
    });
    const releaseB = await serial.acquire('b');
    order.push('b');
    // Every promise job that could let the second holder in has run by the next turn of the event loop.
    await new Promise((r) => setImmediate(r));
    assert.equal(a2Held, false, 'the second holder of a got in before the first released');
    order.push('a1 releases');
    releaseA1();
    releaseA1(); // twice is harmless
    const releaseA2 = await a2;
    assert.deepEqual(order, ['b', 'a1 releases', 'a2']);
    releaseA2();
    releaseB();
    assert.equal(serial.size, 0);
  });
});
