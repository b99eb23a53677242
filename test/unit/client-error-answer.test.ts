import assert from 'node:assert/strict';
import { clientErrorAnswer } from '../../src/gateway/client-error.js';

const parse = (raw: string): { status: number; body: { error: number; message: string } } => {
  const [head, body] = raw.split('\r\n\r\n') as [string, string];
  assert.match(head, /\r\nConnection: close/);
  assert.equal(Number(/Content-Length: (\d+)/.exec(head)?.[1]), Buffer.byteLength(body));
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) as { error: number; message: string } };
};

describe('the answer to a request the HTTP parser refused', () => {
  it('408 when the headers did not arrive in time (it was a 400 "malformed HTTP request")', () => {
    const a = parse(clientErrorAnswer(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), 30_000));
    assert.equal(a.status, 408);
    assert.match(a.body.message, /headers did not arrive within 30 s/);
  });

  it('431 for oversized headers, 400 with llhttp\'s reason otherwise', () => {
    assert.equal(parse(clientErrorAnswer(Object.assign(new Error('x'), { code: 'HPE_HEADER_OVERFLOW' }), 30_000)).status, 431);
    const bad = parse(clientErrorAnswer(Object.assign(new Error('x'), { code: 'HPE_INVALID_METHOD', reason: 'Invalid method encountered' }), 30_000));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.message, 'malformed HTTP request: Invalid method encountered');
  });
});
