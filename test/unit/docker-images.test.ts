import assert from 'node:assert/strict';
import { recordName } from '../../src/docker/image-pulls.js';
import { familiarRef, parseImageRef } from '../../src/config/image-reference.js';
import { parseSharedImages, visibility, type EngineImage } from '../../src/docker/images.js';
import { matchEndpoint } from '../../src/docker/policy.js';
import { PullProgress, errorLine, pullTarget } from '../../src/docker/pull-observer.js';
import { checkLoginServer } from '../../src/docker/registries.js';
import { GatewayError } from '../../src/errors.js';

const ID = (c: string): string => `sha256:${c.repeat(64)}`;
const DIGEST = `sha256:${'d'.repeat(64)}`;

describe('image references as the engine reads them', () => {
  it('names in full form, tags, digests and ids', () => {
    assert.deepEqual(parseImageRef('busybox'), { kind: 'name', repository: 'docker.io/library/busybox', tag: undefined, digest: undefined });
    assert.deepEqual(parseImageRef('user/app:1.2'), { kind: 'name', repository: 'docker.io/user/app', tag: '1.2', digest: undefined });
    assert.deepEqual(parseImageRef('index.docker.io/library/busybox:1'), { kind: 'name', repository: 'docker.io/library/busybox', tag: '1', digest: undefined });
    assert.deepEqual(parseImageRef(`127.0.0.1:5001/secret/app:1@${DIGEST}`), { kind: 'name', repository: '127.0.0.1:5001/secret/app', tag: '1', digest: DIGEST });
    assert.deepEqual(parseImageRef('localhost/x'), { kind: 'name', repository: 'localhost/x', tag: undefined, digest: undefined });
    assert.deepEqual(parseImageRef(ID('a')), { kind: 'id', id: ID('a') });
    assert.deepEqual(parseImageRef('a'.repeat(64)), { kind: 'id', id: ID('a') });
  });

  it('what the engine refuses as invalid is undefined (the engine answers it, 400)', () => {
    for (const bad of ['', 'BusyBox', 'a//b', 'a:', 'a@sha256:12', 'reg:5000/Up/x', `a:${'t'.repeat(129)}`, 'a b']) assert.equal(parseImageRef(bad), undefined, bad);
  });

  it('"No such image" names a reference as the engine does: short form, :latest added, ids and digests as they are', () => {
    assert.equal(familiarRef('busybox'), 'busybox:latest');
    assert.equal(familiarRef('docker.io/library/busybox:1'), 'busybox:1');
    assert.equal(familiarRef('127.0.0.1:5001/secret/app'), '127.0.0.1:5001/secret/app:latest');
    assert.equal(familiarRef(`app@${DIGEST}`), `app@${DIGEST}`);
    assert.equal(familiarRef('abc123'), 'abc123:latest');
    assert.equal(familiarRef(ID('0')), ID('0'));
  });
});

describe('docker.sharedImages', () => {
  it('ids, pinned digests and tags (":latest" when none), in full form', () => {
    const shared = parseSharedImages(['local/busybox', `reg.example.com/base@${DIGEST}`, ID('e'), 'python:3.12']);
    assert.deepEqual([...shared.tags], ['docker.io/local/busybox:latest', 'docker.io/library/python:3.12']);
    assert.deepEqual([...shared.digests], [`reg.example.com/base@${DIGEST}`]);
    assert.deepEqual([...shared.ids], [ID('e')]);
  });

  it('an entry the engine could not read stops the start, naming it', () => {
    assert.throws(() => parseSharedImages(['busybox', 'Not/Valid']), (e: unknown) => e instanceof GatewayError && e.code === 'config_invalid' && /docker\.sharedImages\[1\]: "Not\/Valid" is not an image reference/.test(e.message));
  });
});

describe('which images a project may use, and which of their names it sees', () => {
  const shared = parseSharedImages(['local/busybox', ID('5')]);
  const privateImage: EngineImage = { id: ID('a'), repoTags: ['127.0.0.1:5001/secret/app:1'], repoDigests: [`127.0.0.1:5001/secret/app@${DIGEST}`] };
  const alicePulled = [{ project: 'alpha', repository: '127.0.0.1:5001/secret/app', image: ID('a') }];

  it('a private image: usable by the project that pulled it, by no other', () => {
    assert.equal(visibility(privateImage, 'alpha', alicePulled, shared).usable, true);
    assert.equal(visibility(privateImage, 'beta', alicePulled, shared).usable, false);
    assert.equal(visibility(privateImage, 'alpha', [], shared).usable, false, 'nobody pulled it: nobody may use it');
  });

  it("records of other images do not count (the caller's list holds every image's records)", () => {
    assert.equal(visibility(privateImage, 'alpha', [{ project: 'alpha', repository: '127.0.0.1:5001/secret/app', image: ID('b') }], shared).usable, false);
  });

  it('the same content pulled from another repository is usable, but the other project\'s names stay hidden', () => {
    const image: EngineImage = { id: ID('a'), repoTags: ['127.0.0.1:5001/secret/app:1', 'mirror.example.com/app:1', 'ops/app:1'], repoDigests: [`127.0.0.1:5001/secret/app@${DIGEST}`, `mirror.example.com/app@${DIGEST}`] };
    const records = [...alicePulled, { project: 'beta', repository: 'mirror.example.com/app', image: ID('a') }];
    const seen = visibility(image, 'beta', records, shared);
    assert.equal(seen.usable, true);
    assert.deepEqual(image.repoTags.filter(seen.shows), ['mirror.example.com/app:1', 'ops/app:1'], "alpha's registry is hidden, an operator's name is not");
    assert.deepEqual(image.repoDigests.filter(seen.shows), [`mirror.example.com/app@${DIGEST}`]);
  });

  it("shared by tag: an operator's preloaded image is usable by all; the same tag moved by a tenant's pull shares nothing", () => {
    const preloaded: EngineImage = { id: ID('1'), repoTags: ['local/busybox:latest'], repoDigests: [] };
    assert.equal(visibility(preloaded, 'beta', [], shared).usable, true);
    const moved: EngineImage = { id: ID('2'), repoTags: ['local/busybox:latest'], repoDigests: [] };
    const pulledOver = [{ project: 'alpha', repository: 'docker.io/local/busybox', image: ID('2') }];
    assert.equal(visibility(moved, 'beta', pulledOver, shared).usable, false);
    assert.equal(visibility(moved, 'alpha', pulledOver, shared).usable, true);
  });

  it('shared by id: usable by all whatever its names, with the placeholders the engine shows for untagged images kept', () => {
    const image: EngineImage = { id: ID('5'), repoTags: ['<none>:<none>'], repoDigests: ['<none>@<none>'] };
    const seen = visibility(image, 'beta', [], shared);
    assert.equal(seen.usable, true);
    assert.deepEqual([...image.repoTags, ...image.repoDigests].filter(seen.shows), ['<none>:<none>', '<none>@<none>']);
  });
});

describe("a pull's progress lines", () => {
  const lines = (...objects: unknown[]): Buffer => Buffer.from(objects.map((o) => `${JSON.stringify(o)}\r\n`).join(''));

  it('collects the digests of a complete pull, split across chunks anywhere, multi-byte characters included', () => {
    const progress = new PullProgress();
    const all = lines({ status: 'Pulling from secret/app', id: '1' }, { status: 'Extracting', progress: '[=====>   ] ü' }, { status: `Digest: ${DIGEST}` }, { status: 'Status: Downloaded newer image for x:1' });
    for (let i = 0; i < all.length; i += 7) progress.data(all.subarray(i, i + 7));
    progress.end();
    assert.deepEqual([...progress.digests], [DIGEST]);
    assert.equal(progress.failed, false);
    assert.equal(progress.unreadable, false);
  });

  it('an error line anywhere fails the pull, even after a digest', () => {
    const progress = new PullProgress();
    progress.data(lines({ status: `Digest: ${DIGEST}` }, { errorDetail: { message: 'unauthorized' }, error: 'unauthorized' }));
    progress.end();
    assert.equal(progress.failed, true);
  });

  it('a last line without a newline is read; a line too long to hold is not, and nothing is recorded from it', () => {
    const tail = new PullProgress();
    tail.data(Buffer.from(`{"status":"Digest: ${DIGEST}"}`));
    tail.end();
    assert.deepEqual([...tail.digests], [DIGEST]);
    const long = new PullProgress();
    long.data(Buffer.from(`{"status":"${'x'.repeat(70 * 1024)}`));
    assert.equal(long.unreadable, true);
  });

  it("the gateway's own error line is one the docker CLI prints", () => {
    assert.deepEqual(JSON.parse(errorLine('why').toString()), { errorDetail: { message: 'why' }, error: 'why' });
    assert.ok(errorLine('why').toString().endsWith('\r\n'));
  });

  it('what a pull names: its repository in full form, and whether it is by digest', () => {
    assert.deepEqual(pullTarget(new URLSearchParams('fromImage=127.0.0.1:5001/secret/app&tag=1')), { repository: '127.0.0.1:5001/secret/app', byDigest: false });
    assert.deepEqual(pullTarget(new URLSearchParams(`fromImage=busybox&tag=${DIGEST}`)), { repository: 'docker.io/library/busybox', byDigest: true });
    assert.deepEqual(pullTarget(new URLSearchParams(`fromImage=busybox@${DIGEST}`)), { repository: 'docker.io/library/busybox', byDigest: true });
    assert.deepEqual(pullTarget(new URLSearchParams('fromImage=busybox')), { repository: 'docker.io/library/busybox', byDigest: false }, 'all tags (docker pull -a)');
    assert.equal(pullTarget(new URLSearchParams('fromImage=Bad')), undefined);
  });
});

describe("pull records' volume names", () => {
  it('the same pull gives the same name on every replica; another project, repository or image another name', () => {
    const r = { project: 'alpha', repository: 'docker.io/library/busybox', image: ID('a') };
    assert.match(recordName(r), /^zun-gateway-pull-[0-9a-f]{40}$/);
    assert.equal(recordName({ ...r }), recordName(r));
    for (const other of [{ ...r, project: 'beta' }, { ...r, repository: 'docker.io/library/alpine' }, { ...r, image: ID('b') }]) assert.notEqual(recordName(other), recordName(r));
  });
});

describe('docker login (POST /auth) through the gateway', () => {
  it('is served', () => {
    assert.equal(matchEndpoint('POST', ['auth']).endpoint.body, 'registry-login');
  });

  it('reaches only registries a pull may reach', () => {
    const refused = (address: unknown, allowed?: string[]): void =>
      assert.throws(() => checkLoginServer(address, allowed), (e: unknown) => e instanceof GatewayError && e.status === 403 && /^logging in to \S+ is not allowed/.test(e.message), String(address));
    refused('127.0.0.1:5001');
    refused('http://169.254.169.254/latest');
    refused('https://localhost:5000/v2/');
    refused('reg.example.com', ['127.0.0.1:5001']);
    refused(undefined, ['127.0.0.1:5001']);
    checkLoginServer('127.0.0.1:5001', ['127.0.0.1:5001']);
    checkLoginServer('https://index.docker.io/v1/', ['docker.io']);
    checkLoginServer(undefined, ['docker.io']);
    checkLoginServer('reg.example.com', undefined);
    assert.throws(() => checkLoginServer(5, undefined), (e: unknown) => e instanceof GatewayError && e.status === 400);
  });
});
