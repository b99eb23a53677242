import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { firstSegmentOf, parseRequestTarget } from '../../src/routes/path.js';

describe('request target checks', () => {
  for (const bad of [
    '/k8s/../docker', '/k8s/a/..', '/k8s/./x', '/k8s/%2e%2e/x', '/k8s/%2E./x', '/k8s/.%2e', '/k8s/a%2fb', '/k8s/a%2Fb', '/k8s/a%5cb',
    '/k8s/a%5Cb', '/k8s/a\\b', '/k8s/a%0ab', '/k8s/a%0D%0Ab', '/k8s/a\x7fb', '/k8s/a%7fb', '/k8s/%c0%ae/x', '//k8s/api', '/k8s//api', '/k8s/%c0%ae%c0%ae/x', '/k8s/%ff', '/k8s/a%00b', '/k8s/a\tb', '/k8s/\u00e9', 'http://evil/k8s', '*', '/k8s/a b', '/k8s/a"b', '/k8s/a<b>', '/k8s/a{b}', '/k8s/a|b', '/k8s/a^b', '/k8s/a`b', '/k8s/[::1]',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseRequestTarget(bad), GatewayError);
    });
  }

  it('accepts what kubectl sends and keeps the raw rest, query included', () => {
    const t = parseRequestTarget('/k8s/api/v1/namespaces/a/pods?labelSelector=app%3Dweb%2Cx%20in%20(a%2Cb)&watch=1');
    assert.deepEqual(t.segments, ['k8s', 'api', 'v1', 'namespaces', 'a', 'pods']);
    assert.equal(t.rest, '/api/v1/namespaces/a/pods?labelSelector=app%3Dweb%2Cx%20in%20(a%2Cb)&watch=1');
    assert.equal(parseRequestTarget('/k8s').rest, '');
    assert.equal(parseRequestTarget('/k8s?x=..').rest, '?x=..');
    assert.deepEqual(parseRequestTarget('/k8s/apis/').segments, ['k8s', 'apis', '']);
    assert.deepEqual(parseRequestTarget('/k8s/api/v1/namespaces/a/configmaps/my.config').segments.at(-1), 'my.config');
  });

  for (const ok of [
    '/k8s/api',
    '/k8s/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kubectl-client-side-apply&fieldValidation=Strict',
    '/k8s/openapi/v3/apis/apps/v1?hash=0123ABCDEF',
    '/k8s/api/v1/namespaces/a/pods/p/exec?command=sh&command=-c&command=echo%20a%2Fb%20..&stdin=true&tty=false',
    '/k8s/api/v1/namespaces/a/pods/p:8080/proxy/',
    '/k8s/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aaggregate-to-edit',
  ]) {
    it(`accepts ${ok} and keeps the raw rest byte for byte`, () => {
      const t = parseRequestTarget(ok);
      assert.equal(t.segments[0], 'k8s');
      assert.equal(t.rest, ok.slice('/k8s'.length));
    });
  }

  it('decodes segments but never the raw rest', () => {
    const t = parseRequestTarget('/k8s/apis/x/system%3Amasters?q=%2e%2e%2F');
    assert.equal(t.segments.at(-1), 'system:masters');
    assert.equal(t.rest, '/apis/x/system%3Amasters?q=%2e%2e%2F');
  });

  it('tells which mount a refused path was aimed at, for the error dialect', () => {
    assert.throws(() => parseRequestTarget('/k8s/../x'), (e: unknown) => e instanceof GatewayError && e.code === 'path_invalid');
    assert.equal(firstSegmentOf('/k8s/../x'), 'k8s');
    assert.equal(firstSegmentOf('/docker?x'), 'docker');
    assert.equal(firstSegmentOf('/%ff/x'), undefined);
  });
});
