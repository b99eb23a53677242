import assert from 'node:assert/strict';
import { isImageReferenceOrDigest, parseImageReference } from '../../src/config/image-reference.js';
import { SharedImages, alwaysPullPatch, cachedImageUses, reviewImagePull } from '../../src/k8s/image-pull-policy.js';
import { podSchema, type Pod } from '../../src/k8s/pod-security.js';
import { admissionReview } from '../helpers/admission-review.js';

type Obj = Record<string, unknown>;

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER_DIGEST = `sha256:${'cd'.repeat(32)}`;

function pod(containers: Obj[], more: Obj = {}): Obj {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers, ...more } };
}
const parsed = (o: Obj): Pod => podSchema.parse(o) as Pod;

interface Answer {
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { message: string } };
}
const decode = (a: Answer): unknown => (a.response.patch === undefined ? undefined : JSON.parse(Buffer.from(a.response.patch, 'base64').toString('utf8')));

describe('image references: as the runtimes read them', () => {
  it('writes short names in full: Docker Hub, library/, latest', () => {
    const cases: Array<[string, string]> = [
      ['busybox', 'docker.io/library/busybox:latest'],
      ['busybox:1.36', 'docker.io/library/busybox:1.36'],
      ['library/busybox', 'docker.io/library/busybox:latest'],
      ['docker.io/busybox', 'docker.io/library/busybox:latest'],
      ['index.docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
      ['local/busybox', 'docker.io/local/busybox:latest'],
      ['127.0.0.1:5000/secret/app:1', '127.0.0.1:5000/secret/app:1'],
      ['localhost/app', 'localhost/app:latest'],
      ['registry.example:5000/team/app', 'registry.example:5000/team/app:latest'],
      [`busybox@${DIGEST}`, `docker.io/library/busybox@${DIGEST}`],
      [`busybox:1.36@${DIGEST}`, `docker.io/library/busybox@${DIGEST}`],
    ];
    for (const [text, canonical] of cases) assert.equal(parseImageReference(text)?.canonical, canonical, text);
  });

  it('refuses what no runtime accepts', () => {
    for (const bad of ['', 'Busybox', 'busybox:', 'busybox@sha256:12', 'a//b', 'http://x/y', 'x y', ':tag', 'busybox:bad/tag', '-lead']) {
      assert.equal(parseImageReference(bad), undefined, bad);
    }
    assert.equal(isImageReferenceOrDigest(DIGEST), true);
    assert.equal(isImageReferenceOrDigest('busybox'), true);
    assert.equal(isImageReferenceOrDigest('UPPER'), false);
  });
});

describe('shared images (k8s.tenancy.sharedImages)', () => {
  it('matches by the full reference: busybox is docker.io/library/busybox:latest', () => {
    const shared = new SharedImages(['busybox', 'local/busybox:latest', '127.0.0.1:5000/base/os:12']);
    for (const image of ['busybox', 'busybox:latest', 'docker.io/library/busybox', 'docker.io/library/busybox:latest', 'local/busybox', 'docker.io/local/busybox:latest', '127.0.0.1:5000/base/os:12']) {
      assert.equal(shared.has(image), true, image);
    }
    for (const image of ['busybox:1.36', 'other/busybox', '127.0.0.1:5000/base/os:13', '127.0.0.1:5000/secret/app:1', 'localhost/busybox', undefined, 'Not A Reference']) {
      assert.equal(shared.has(image), false, String(image));
    }
  });

  it('matches by digest: a digest entry shares that content under any name; a tag never matches an image named by digest', () => {
    const shared = new SharedImages([DIGEST, 'busybox:1.36']);
    assert.equal(shared.has(`busybox@${DIGEST}`), true);
    assert.equal(shared.has(`registry.example/any/name:v1@${DIGEST}`), true);
    assert.equal(shared.has(`busybox@${OTHER_DIGEST}`), false);
    assert.equal(shared.has(`busybox:1.36@${OTHER_DIGEST}`), false, 'the tag is shared, the digest is not');
    assert.equal(new SharedImages([`busybox@${DIGEST}`]).has(`docker.io/library/busybox@${DIGEST}`), true);
  });

  it('refuses an entry that is not a reference', () => {
    assert.throws(() => new SharedImages(['Not/Valid']), /k8s\.tenancy\.sharedImages: "Not\/Valid" is not an image reference/);
  });
});

describe('image pull policy: which containers would run from the cache', () => {
  const shared = new SharedImages(['local/busybox']);

  it('every container, init container and ephemeral container not pulling Always with an unshared image', () => {
    const p = parsed(
      pod(
        [
          { name: 'app', image: 'registry.example/secret/app:1', imagePullPolicy: 'IfNotPresent' },
          { name: 'pulls', image: 'registry.example/secret/app:1', imagePullPolicy: 'Always' },
          { name: 'shared', image: 'local/busybox', imagePullPolicy: 'Never' },
          { name: 'unset', image: 'busybox:1.36' },
        ],
        { initContainers: [{ name: 'init', image: 'busybox', imagePullPolicy: 'Never' }], ephemeralContainers: [{ name: 'dbg', image: 'busybox', imagePullPolicy: 'IfNotPresent' }] },
      ),
    );
    const uses = cachedImageUses(p, shared);
    assert.deepEqual(
      uses.map((u) => `${u.list}[${u.index}] ${u.name} ${u.policy}`),
      ['containers[0] app IfNotPresent', 'containers[3] unset unset', 'initContainers[0] init Never', 'ephemeralContainers[0] dbg IfNotPresent'],
    );
    assert.deepEqual(alwaysPullPatch(uses, 'pod'), [
      { op: 'add', path: '/spec/containers/0/imagePullPolicy', value: 'Always' },
      { op: 'add', path: '/spec/containers/3/imagePullPolicy', value: 'Always' },
      { op: 'add', path: '/spec/initContainers/0/imagePullPolicy', value: 'Always' },
      { op: 'add', path: '/spec/ephemeralContainers/0/imagePullPolicy', value: 'Always' },
    ]);
    assert.deepEqual(alwaysPullPatch(uses.slice(3), 'ephemeralContainers'), [{ op: 'add', path: '/ephemeralContainers/0/imagePullPolicy', value: 'Always' }]);
  });

  it('on an update only new containers and changed images count', () => {
    const old = parsed(pod([{ name: 'a', image: 'app:1', imagePullPolicy: 'IfNotPresent' }]));
    assert.deepEqual(cachedImageUses(parsed(pod([{ name: 'a', image: 'app:1', imagePullPolicy: 'IfNotPresent' }])), shared, old), [], 'unchanged');
    assert.equal(cachedImageUses(parsed(pod([{ name: 'a', image: 'app:2', imagePullPolicy: 'IfNotPresent' }])), shared, old).length, 1, 'a new image');
    const added = parsed(pod([{ name: 'a', image: 'app:1', imagePullPolicy: 'IfNotPresent' }], { ephemeralContainers: [{ name: 'dbg', image: 'app:1', imagePullPolicy: 'IfNotPresent' }] }));
    assert.deepEqual(cachedImageUses(added, shared, old).map((u) => u.name), ['dbg'], 'a new ephemeral container');
  });
});

describe('the mutating webhook: imagePullPolicy Always as a JSONPatch', () => {
  const shared = new SharedImages(['local/busybox']);

  it('patches a created pod: patchType JSONPatch, the patch base64, the pod still allowed', () => {
    const body = admissionReview(pod([{ name: 'app', image: '127.0.0.1:5000/secret/app:1', imagePullPolicy: 'IfNotPresent' }, { name: 'shared', image: 'local/busybox', imagePullPolicy: 'Never' }]));
    const d = reviewImagePull(body, shared);
    const a = d.review as Answer;
    assert.equal(a.response.allowed, true);
    assert.equal(a.response.uid, 'uid-1');
    assert.equal(a.response.patchType, 'JSONPatch');
    assert.deepEqual(decode(a), [{ op: 'add', path: '/spec/containers/0/imagePullPolicy', value: 'Always' }]);
    assert.deepEqual(d.summary.patched, ['spec.containers[0] "app"']);
    assert.equal(d.logMessage, 'pod imagePullPolicy set to Always');
  });

  it('sends no patch when nothing changes, when alwaysPullImages is off, and for a pod update (its policy is immutable)', () => {
    const allAlways = reviewImagePull(admissionReview(pod([{ name: 'a', image: 'x', imagePullPolicy: 'Always' }])), shared).review as Answer;
    assert.deepEqual(allAlways.response, { uid: 'uid-1', allowed: true });
    const ifNotPresent = pod([{ name: 'a', image: 'x', imagePullPolicy: 'IfNotPresent' }]);
    assert.deepEqual((reviewImagePull(admissionReview(ifNotPresent), undefined).review as Answer).response, { uid: 'uid-1', allowed: true });
    const update = reviewImagePull(admissionReview(ifNotPresent, { operation: 'UPDATE', oldObject: pod([{ name: 'a', image: 'y', imagePullPolicy: 'IfNotPresent' }]) }), shared);
    assert.equal((update.review as Answer).response.patch, undefined);
  });

  it('patches ephemeral containers added on 1.20 (the EphemeralContainers kind) at their top-level path, existing ones untouched', () => {
    const old = { apiVersion: 'v1', kind: 'EphemeralContainers', metadata: { name: 'p' }, ephemeralContainers: [{ name: 'old', image: 'x', imagePullPolicy: 'IfNotPresent' }] };
    const now = { ...old, ephemeralContainers: [...old.ephemeralContainers, { name: 'dbg', image: 'busybox', imagePullPolicy: 'IfNotPresent' }] };
    const a = reviewImagePull(admissionReview(now, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: old }), shared).review as Answer;
    assert.deepEqual(decode(a), [{ op: 'add', path: '/ephemeralContainers/1/imagePullPolicy', value: 'Always' }]);
  });

  it('refuses what it cannot read or was not meant to see', () => {
    const unreadable = reviewImagePull(admissionReview(pod([{ image: 'nameless' }])), shared).review as Answer;
    assert.equal(unreadable.response.allowed, false);
    assert.match(unreadable.response.status?.message ?? '', /could not read this pod to set its imagePullPolicy/);
    const services = reviewImagePull(admissionReview({}, { resource: { group: '', version: 'v1', resource: 'services' } }), shared).review as Answer;
    assert.equal(services.response.allowed, false);
    assert.match(services.response.status?.message ?? '', /MutatingWebhookConfiguration's rules are wrong/);
  });
});
