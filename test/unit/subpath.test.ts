import assert from 'node:assert/strict';
import { ApiserverVersionWatch } from '../../src/k8s/apiserver-version.js';
import { podSchema, type Pod } from '../../src/k8s/pod-security.js';
import { parseKubeVersion, subPathMounts, subPathRule, subPathVulnerable } from '../../src/k8s/subpath.js';
import { silentLogger } from '../../src/observability/logger.js';

const vulnerable = (text: string): boolean => {
  const v = parseKubeVersion(text);
  assert.ok(v !== undefined, `${text} parses`);
  return subPathVulnerable(v);
};

describe('CVE-2021-25741: which Kubernetes versions are affected', () => {
  it('reads gitVersions as clusters report them: v prefix, vendor suffixes, build metadata', () => {
    assert.deepEqual(parseKubeVersion('v1.20.2'), { major: 1, minor: 20, patch: 2, prerelease: false });
    assert.deepEqual(parseKubeVersion('v1.21.5-gke.1'), { major: 1, minor: 21, patch: 5, prerelease: false });
    assert.deepEqual(parseKubeVersion('v1.19.16+k3s1'), { major: 1, minor: 19, patch: 16, prerelease: false });
    assert.deepEqual(parseKubeVersion('v1.22.2-eks-6d3986b'), { major: 1, minor: 22, patch: 2, prerelease: false });
    assert.deepEqual(parseKubeVersion('1.20.11'), { major: 1, minor: 20, patch: 11, prerelease: false });
    assert.deepEqual(parseKubeVersion('v1.22.2-rc.0'), { major: 1, minor: 22, patch: 2, prerelease: true });
    assert.deepEqual(parseKubeVersion('v1.23.0-alpha.3.123+abcdef'), { major: 1, minor: 23, patch: 0, prerelease: true });
    // The last: what an apiserver built without version stamping reports.
    for (const bad of ['', 'v1.20', 'latest', 'v1.20.x', 'v1.20.2 extra', 'v0.0.0-master+$Format:%H$']) assert.equal(parseKubeVersion(bad), undefined, bad);
  });

  it('affected: before 1.19.15, 1.20.11, 1.21.5, 1.22.2 on each line, every 1.18 and older, prereleases of the fixed patch', () => {
    for (const v of ['v1.20.2', 'v1.20.10', 'v1.19.14', 'v1.21.4-gke.1', 'v1.22.1', 'v1.22.0', 'v1.18.20', 'v1.16.0', 'v1.22.2-rc.0', 'v1.20.11-beta.1', 'v1.23.0-alpha.1']) {
      assert.equal(vulnerable(v), true, v);
    }
  });

  it('fixed: those patch releases and later, every release from 1.23, vendor builds of a fixed release', () => {
    for (const v of ['v1.20.11', 'v1.20.15', 'v1.19.15', 'v1.19.16+k3s1', 'v1.21.5-gke.1', 'v1.22.2', 'v1.22.2-eks-6d3986b', 'v1.23.0', 'v1.24.0-alpha.1', 'v1.29.3', 'v2.0.0']) {
      assert.equal(vulnerable(v), false, v);
    }
  });
});

describe('the subPath rule', () => {
  it('auto: refused on an affected version, naming it and the fixed versions; allowed on a fixed one', () => {
    const refused = subPathRule('auto', { known: true, gitVersion: 'v1.20.2' });
    assert.equal(refused.refuse, true);
    assert.match(refused.refuse ? refused.because : '', /Kubernetes v1\.20\.2, which is affected by CVE-2021-25741 \(fixed in 1\.19\.15, 1\.20\.11, 1\.21\.5, 1\.22\.2/);
    assert.deepEqual(subPathRule('auto', { known: true, gitVersion: 'v1.21.5-gke.1' }), { refuse: false });
  });

  it('auto fails closed: a version not read (yet) or unreadable is treated as affected, and says so', () => {
    const unknown = subPathRule('auto', { known: false, why: 'GET /version failed: connect ECONNREFUSED' });
    assert.equal(unknown.refuse, true);
    assert.match(unknown.refuse ? unknown.because : '', /does not know this cluster's Kubernetes version \(GET \/version failed: connect ECONNREFUSED\), so it assumes CVE-2021-25741/);
    const odd = subPathRule('auto', { known: true, gitVersion: 'v0.0.0-master+$Format:%H$' });
    assert.equal(odd.refuse, true);
  });

  it("the operator's word decides over the version: refuse and allow", () => {
    assert.equal(subPathRule('refuse', { known: true, gitVersion: 'v1.29.0' }).refuse, true);
    assert.deepEqual(subPathRule('allow', { known: true, gitVersion: 'v1.20.2' }), { refuse: false });
    assert.deepEqual(subPathRule('allow', { known: false, why: 'x' }), { refuse: false });
  });

  it('finds subPath and subPathExpr in every kind of container, not empty ones', () => {
    const pod = podSchema.parse({
      spec: {
        containers: [{ name: 'a', volumeMounts: [{ name: 'v', mountPath: '/a' }, { name: 'v', mountPath: '/b', subPath: 'x' }, { name: 'v', mountPath: '/c', subPath: '' }] }],
        initContainers: [{ name: 'i', volumeMounts: [{ name: 'v', mountPath: '/d', subPathExpr: '$(POD)' }] }],
        ephemeralContainers: [{ name: 'e', volumeMounts: [{ name: 'v', mountPath: '/e', subPath: '../..' }] }],
      },
    }) as Pod;
    assert.deepEqual(subPathMounts(pod), [
      'spec.containers[0] "a" volumeMounts[1].subPath="x"',
      'spec.initContainers[0] "i" volumeMounts[0].subPathExpr="$(POD)"',
      'spec.ephemeralContainers[0] "e" volumeMounts[0].subPath="../.."',
    ]);
  });
});

describe("the apiserver's version, read by the gateway", () => {
  const quiet = silentLogger();
  const manual = () => {
    const planned: Array<() => void> = [];
    return { planned, schedule: (run: () => void) => (planned.push(run), { cancel: () => planned.splice(0) }) };
  };

  it('unknown until read; then the version read; re-read on schedule; a failed re-read keeps what was known', async () => {
    const answers: Array<string | Error> = ['v1.20.2', new Error('boom'), 'v1.22.2'];
    const watch = new ApiserverVersionWatch(
      async () => {
        const next = answers.shift();
        if (next instanceof Error || next === undefined) throw next ?? new Error('no more');
        return next;
      },
      quiet,
      { schedule: manual().schedule },
    );
    assert.deepEqual(watch.current(), { known: false, why: 'not read yet' });
    await watch.refresh();
    assert.deepEqual(watch.current(), { known: true, gitVersion: 'v1.20.2' });
    await watch.refresh();
    assert.deepEqual(watch.current(), { known: true, gitVersion: 'v1.20.2' }, 'kept');
    await watch.refresh();
    assert.deepEqual(watch.current(), { known: true, gitVersion: 'v1.22.2' });
  });

  it('a first read that fails, or never answers, leaves it unknown with the reason', async () => {
    const failing = new ApiserverVersionWatch(() => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6443')), quiet);
    await failing.refresh();
    assert.deepEqual(failing.current(), { known: false, why: 'GET /version failed: connect ECONNREFUSED 127.0.0.1:6443' });
    const silent = new ApiserverVersionWatch(() => new Promise<string>(() => undefined), quiet, { timeoutMs: 5 });
    await silent.refresh();
    assert.deepEqual(silent.current(), { known: false, why: 'GET /version failed: no answer within 0.005 s' });
  });

  it('start reads at once and plans the next read; stop cancels it', async () => {
    let reads = 0;
    const clock = manual();
    const watch = new ApiserverVersionWatch(async () => `v1.20.${++reads}`, quiet, { schedule: clock.schedule });
    watch.start();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reads, 1);
    assert.equal(clock.planned.length, 1);
    clock.planned.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reads, 2);
    assert.deepEqual(watch.current(), { known: true, gitVersion: 'v1.20.2' });
    watch.stop();
    assert.equal(clock.planned.length, 0);
  });
});
