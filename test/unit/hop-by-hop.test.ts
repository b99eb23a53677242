import assert from 'node:assert/strict';
import { relayedHeaders } from '../../src/proxy/hop-by-hop.js';

describe('response headers relayed to the client (relayedHeaders)', () => {
  it('drops hop-by-hop headers, those the Connection header names, and HTTP/2 pseudo-headers; keeps the rest in order', () => {
    const head = {
      ':status': '200',
      'content-type': 'application/json',
      connection: 'keep-alive, X-Private-Hop',
      'keep-alive': 'timeout=5',
      'x-private-hop': 'secret',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'audit-id': 'abc',
    };
    assert.deepEqual(Object.entries(relayedHeaders(head)), [
      ['content-type', 'application/json'],
      ['set-cookie', ['a=1', 'b=2']],
      ['audit-id', 'abc'],
    ]);
  });

  it('returns a head without any of them as it is (no copy)', () => {
    const head = { 'content-type': 'application/json', 'content-length': '2', 'audit-id': 'abc' };
    assert.equal(relayedHeaders(head), head);
    assert.deepEqual(head, { 'content-type': 'application/json', 'content-length': '2', 'audit-id': 'abc' });
  });
});
