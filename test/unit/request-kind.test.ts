import assert from 'node:assert/strict';
import { isLongLived as dockerLongLived, matchEndpoint, namedObject } from '../../src/docker/policy.js';
import { isDiscovery, isLongLived, isWatch, namespaceOf } from '../../src/k8s/request-kind.js';

describe('what a request addresses (audit trail and metrics)', () => {
  describe('Kubernetes namespace', () => {
    const cases: Array<[string, string | undefined]> = [
      ['/api/v1/namespaces/os-alpha/pods', 'os-alpha'],
      ['/api/v1/namespaces/os-alpha', 'os-alpha'],
      ['/api/v1/namespaces/os-alpha?watch=1', 'os-alpha'],
      ['/apis/apps/v1/namespaces/team-b/deployments/web', 'team-b'],
      ['/api/v1/watch/namespaces/os-alpha/pods', 'os-alpha'],
      ['/api/v1/namespaces/os%2Dalpha/pods', 'os-alpha'],
      ['/api/v1/namespaces', undefined],
      ['/api/v1/nodes', undefined],
      ['/apis/apps/v1/deployments', undefined],
      ['/version', undefined],
      ['/api/v1/namespacesx/a/pods', undefined],
      // A prefix of another namespace's name is that other namespace (a provisioning refusal is told apart by it).
      ['/api/v1/namespaces/os-ab/pods', 'os-ab'],
      ['/api/v1/namespaces/os-beta/pods', 'os-beta'],
      ['/api/v1/namespaces/os-a/pods?watch=1', 'os-a'],
      ['/api/v1/pods', undefined],
      ['/apis', undefined],
    ];
    for (const [p, ns] of cases) it(`${p} -> ${String(ns)}`, () => assert.equal(namespaceOf(p), ns));
  });

  describe('Kubernetes long-lived requests', () => {
    const cases: Array<[string, boolean]> = [
      ['/api/v1/namespaces/a/pods?watch=true', true],
      ['/api/v1/pods?watch=1&resourceVersion=5', true],
      ['/api/v1/watch/pods', true],
      ['/api/v1/namespaces/a/pods/web/log?follow=true', true],
      ['/api/v1/namespaces/a/pods/web/log', false],
      ['/api/v1/namespaces/a/pods?watch=false', false],
      ['/api/v1/namespaces/a/pods?follow=true', false],
      ['/api/v1/namespaces/a/pods', false],
      // Booleans as the apiserver reads them: anything but absent, 0 and false (any case) is true (?watch=yes streamed
      // on the real 1.20 apiserver while the gateway took it for a list, and the stream outlived its revoked token).
      ['/api/v1/namespaces/a/configmaps?watch=yes', true],
      ['/api/v1/namespaces/a/configmaps?watch=TRUE', true],
      ['/api/v1/namespaces/a/configmaps?watch=', true],
      ['/api/v1/namespaces/a/configmaps?watch', true],
      ['/api/v1/namespaces/a/configmaps?watch=on&watch=0', true],
      ['/api/v1/namespaces/a/configmaps?watch=False', false],
      ['/api/v1/namespaces/a/configmaps?watch=0&watch=1', false],
      ['/api/v1/namespaces/a/pods/web/log?follow=yes', true],
      ['/api/v1/namespaces/a/pods/web/log?follow=FALSE', false],
    ];
    for (const [p, want] of cases) it(`${p} -> ${want}`, () => assert.equal(isLongLived(p), want));

    it('watches (ended at once on shutdown) are the long-lived requests other than logs -f', () => {
      for (const [p, longLived] of cases) assert.equal(isWatch(p), longLived && !p.includes('/log?'), p);
      assert.equal(isWatch('/apis/apps/v1/watch/namespaces/a/deployments'), true);
    });
  });

  describe('Docker object and long-lived requests', () => {
    const q = (s: string): URLSearchParams => new URLSearchParams(s);
    it('names containers, execs, volumes, networks and images', () => {
      assert.equal(namedObject(matchEndpoint('GET', ['containers', 'web', 'json']), q('')), 'container:web');
      assert.equal(namedObject(matchEndpoint('POST', ['exec', 'abc', 'start']), q('')), 'exec:abc');
      assert.equal(namedObject(matchEndpoint('DELETE', ['volumes', 'data']), q('')), 'volume:data');
      assert.equal(namedObject(matchEndpoint('GET', ['images', 'library', 'busybox', 'json']), q('')), 'image:library/busybox');
      assert.equal(namedObject(matchEndpoint('POST', ['images', 'create']), q('fromImage=busybox&tag=1.36')), 'image:busybox:1.36');
      assert.equal(namedObject(matchEndpoint('POST', ['containers', 'create']), q('name=web')), 'container:web');
      assert.equal(namedObject(matchEndpoint('GET', ['containers', 'json']), q('')), undefined);
    });
    it('events, logs --follow, streaming stats and wait stay open; the rest does not', () => {
      const ll = (method: string, route: string[], query = ''): boolean => dockerLongLived(matchEndpoint(method, route), q(query));
      assert.equal(ll('GET', ['events']), true);
      assert.equal(ll('GET', ['containers', 'w', 'logs'], 'follow=1&stdout=1'), true);
      assert.equal(ll('GET', ['containers', 'w', 'logs'], 'stdout=1'), false);
      assert.equal(ll('GET', ['containers', 'w', 'stats']), true);
      assert.equal(ll('GET', ['containers', 'w', 'stats'], 'stream=false'), false);
      assert.equal(ll('POST', ['containers', 'w', 'wait']), true);
      assert.equal(ll('GET', ['containers', 'json']), false);
    });
    it("reads follow and stream as dockerd does (follow=yes follows), and an attach without Upgrade as the stream the engine makes of it", () => {
      const ll = (method: string, route: string[], query = ''): boolean => dockerLongLived(matchEndpoint(method, route), q(query));
      for (const yes of ['yes', 'on', 'TRUE', '2', 'x']) assert.equal(ll('GET', ['containers', 'w', 'logs'], `follow=${yes}`), true, yes);
      for (const no of ['', '0', 'no', 'False', 'NONE']) assert.equal(ll('GET', ['containers', 'w', 'logs'], `follow=${no}`), false, no);
      assert.equal(ll('GET', ['containers', 'w', 'stats'], 'stream=yes'), true);
      assert.equal(ll('GET', ['containers', 'w', 'stats'], 'stream='), false);
      assert.equal(ll('GET', ['containers', 'w', 'stats'], 'stream=none'), false);
      assert.equal(ll('POST', ['containers', 'w', 'attach'], 'stream=1&stdout=1'), true);
    });
  });
});

describe('isDiscovery', () => {
  it('is discovery and OpenAPI, nothing that names a resource', () => {
    for (const p of ['/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/apis/apps/v1/', '/version', '/version?timeout=32s', '/openapi/v2', '/openapi/v3/apis/apps/v1']) {
      assert.equal(isDiscovery(p), true, p);
    }
    for (const p of ['/api/v1/pods', '/api/v1/namespaces/a/pods', '/apis/apps/v1/deployments', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', '/healthz', '/logs']) {
      assert.equal(isDiscovery(p), false, p);
    }
  });
});
