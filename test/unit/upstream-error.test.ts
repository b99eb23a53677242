import assert from 'node:assert/strict';
import { UpstreamError } from '../../src/proxy/errors.js';

describe('UpstreamError.from: what a client is told when the upstream fails before answering', () => {
  it('a connection the upstream never completes (TCP accepted, TLS never answered: a stopped apiserver) is a 504 that says so', () => {
    const err = UpstreamError.from(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    assert.equal(err.status, 504);
    assert.match(err.message, /did not complete a connection within 10 s/);
  });

  it('a refused connection is a 502 naming the system error', () => {
    const err = UpstreamError.from(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    assert.equal(err.status, 502);
    assert.match(err.message, /upstream unreachable: ECONNREFUSED/);
  });
});
