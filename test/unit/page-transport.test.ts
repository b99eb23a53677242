import assert from 'node:assert/strict';
import { passwordMayCross } from '../../src/gateway/page.js';

describe("the page's sign-in takes a password only where it cannot be read on the way", () => {
  it('over TLS from anywhere, over plain HTTP from this machine only, or when TLS ends in front (ui.publicUrl)', () => {
    assert.equal(passwordMayCross({ encrypted: true, remoteAddress: '203.0.113.9' }, false), true);
    for (const local of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(passwordMayCross({ remoteAddress: local }, false), true, local);
    for (const remote of ['203.0.113.9', '::ffff:10.0.0.1', '2001:db8::1', undefined]) assert.equal(passwordMayCross({ remoteAddress: remote }, false), false, String(remote));
    assert.equal(passwordMayCross({ remoteAddress: '203.0.113.9' }, true), true);
  });
});
