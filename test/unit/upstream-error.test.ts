import assert from 'node:assert/strict';
import { upstreamFailure } from '../../src/proxy/errors.js';

describe('upstreamFailure: what a client is told when the upstream fails before answering', () => {
  it('a connection the upstream never completes (TCP accepted, TLS never answered: a stopped apiserver) is a 504 that says so', () => {
    const err = upstreamFailure(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    assert.equal(err.status, 504);
    assert.match(err.message, /did not complete a connection within 10 s/);
  });

  it('a refused connection is a 502 naming the system error', () => {
    const err = upstreamFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    assert.equal(err.status, 502);
    assert.match(err.message, /upstream unreachable: ECONNREFUSED \(connection refused: is it running\?\)/);
  });

  it('says what a certificate failure and a connection closed before the answer mean', () => {
    const cert = upstreamFailure(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }));
    assert.match(cert.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE \(the upstream's TLS certificate was not accepted/);
    const closed = upstreamFailure(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    assert.match(closed.message, /UND_ERR_SOCKET \(the upstream closed the connection before answering/);
    assert.equal(upstreamFailure(new Error('odd')).message, 'upstream unreachable: odd');
  });
});
