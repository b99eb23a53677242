import assert from 'node:assert/strict';
import { summarize, type CaseResult } from '../../bench/lib/measure.js';
import { judgeTargets, targetsTable, type Verdict } from '../../bench/lib/targets.js';

/** A case measured in rounds: each entry one round's metrics. */
const c = (scenario: string, caseName: string, target: string, runs: Array<Record<string, number>>): CaseResult =>
  summarize(scenario, caseName, target, runs);

const rps = (...values: number[]): Array<Record<string, number>> => values.map((v) => ({ rps: v, p99Ms: 1, cpuUsPerReq: 50 }));

function verdict(verdicts: readonly Verdict[], prefix: string): Verdict {
  const v = verdicts.find((x) => x.target.startsWith(prefix));
  assert.ok(v !== undefined, `a verdict for ${prefix}`);
  return v;
}

describe("the bench's verdicts against issue 7's targets (bench/lib/targets.ts)", () => {
  it('scenario 1: met only at 0.70x direct or more and ahead of kubectl proxy; peers named', () => {
    const run = (gateway: number, kubectlProxy: number): Verdict =>
      verdict(
        judgeTargets([
          c('1 small GET, real apiserver', 'c16', 'direct', rps(1000, 1000, 1000)),
          c('1 small GET, real apiserver', 'c16', 'gateway', rps(gateway, gateway, gateway)),
          c('1 small GET, real apiserver', 'c16', 'kubectl proxy', rps(kubectlProxy, kubectlProxy, kubectlProxy)),
        ]),
        '1:',
      );
    assert.equal(run(720, 650).met, 'met');
    assert.equal(run(690, 650).met, 'missed');
    assert.equal(run(720, 750).met, 'missed', 'behind kubectl proxy');
    assert.match(run(720, 650).measured, /gateway 0\.72x .*kubectl proxy 0\.65x/);
  });

  it('scenario 2: the gateway against the minimal proxy, and the p99 it adds to direct', () => {
    const verdicts = judgeTargets([
      c('2 small GET, fast upstream', 'c16', 'direct', [{ rps: 50_000, p99Ms: 1.2 }]),
      c('2 small GET, fast upstream', 'c16', 'gateway', [{ rps: 9_000, p99Ms: 3.5, cpuUsPerReq: 60 }]),
      c('2 small GET, fast upstream', 'c16', 'node:http proxy', [{ rps: 10_000, p99Ms: 2.2, cpuUsPerReq: 50 }]),
    ]);
    assert.equal(verdict(verdicts, '2: small GET, fast upstream, c16: gateway >= 0.85x').met, 'met');
    assert.match(verdict(verdicts, '2: small GET, fast upstream, c16: gateway >= 0.85x').measured, /0\.90x; CPU a request 60 against 50 µs/);
    const p99 = verdict(verdicts, '2: small GET, fast upstream, c16: p99');
    assert.equal(p99.met, 'missed', '3.5 - 1.2 = 2.3 ms added');
    assert.match(p99.measured, /gateway 2\.3 ms; node:http proxy 1\.0 ms/);
  });

  it('a ratio is met only when the medians and the rounds agree; unclear when they do not', () => {
    // Medians: gateway 100 ms against direct 100 ms (1.00x); the rounds' own ratios 1.50x, 1.50x, 0.50x (median 1.50x).
    const verdicts = judgeTargets([
      c('3 large LIST', '5000 ConfigMaps', 'direct', [{ totalMs: 100 }, { totalMs: 60 }, { totalMs: 200 }]),
      c('3 large LIST', '5000 ConfigMaps', 'gateway', [{ totalMs: 150, rssGrowthMb: 1, mb: 11 }, { totalMs: 90, rssGrowthMb: 1, mb: 11 }, { totalMs: 100, rssGrowthMb: 40, mb: 11 }]),
    ]);
    const list = verdict(verdicts, '3: large LIST: total time');
    assert.equal(list.met, 'split');
    assert.match(list.measured, /gateway 1\.00x \(rounds 0\.50x to 1\.50x, median 1\.50x\)/);
    assert.equal(verdict(verdicts, '3: large LIST: gateway RSS').met, 'met', 'median growth 1 MB');
    assert.match(targetsTable(verdicts, false), /\| unclear: the rounds disagree with the medians \|/);
  });

  it('watches, streams and authentication; a target the run lacks is not judged; a smoke run judges nothing', () => {
    const verdicts = judgeTargets([
      c('4 watches', '2000 watches', 'direct', [{ eventP99Ms: 70 }]),
      c('4 watches', '2000 watches', 'gateway', [{ eventP99Ms: 85, rssPerWatchKb: 61 }]),
      c('4 watches', '2000 watches', 'nginx', [{ eventP99Ms: 100, rssPerWatchKb: 66 }]),
      c('5 streams', 'kubectl exec -i, 268 MB', 'direct', [{ mbPerS: 200 }]),
      c('5 streams', 'kubectl exec -i, 268 MB', 'gateway', [{ mbPerS: 170 }]),
      c('5 streams', 'kubectl exec -i, 268 MB', 'nginx', [{ mbPerS: 140 }]),
      c('6 auth', 'cache hit, in-process', 'gateway', [{ usPerHit: 21 }]),
      c('6 auth', '1000 concurrent requests, 100 new tokens', 'gateway', [{ keystoneValidations: 101, keystoneRetries: 1, totalMs: 1 }]),
    ]);
    assert.equal(verdict(verdicts, '4: watches: under 60 KB').met, 'missed');
    assert.match(verdict(verdicts, '4: watches: under 60 KB').measured, /61\.0 KB; nginx 66\.0 KB/);
    assert.equal(verdict(verdicts, '4: watches: event latency').met, 'met');
    assert.match(verdict(verdicts, '4: watches: event latency').measured, /gateway 15\.0 ms; nginx 30\.0 ms/);
    assert.equal(verdict(verdicts, '5: streams, kubectl exec').met, 'met');
    assert.match(verdict(verdicts, '5: streams, kubectl exec').measured, /gateway 0\.85x; nginx 0\.70x/);
    assert.equal(verdict(verdicts, '5: streams, docker attach').met, undefined);
    assert.equal(verdict(verdicts, '5: streams, docker attach').measured, 'not in this run');
    assert.equal(verdict(verdicts, '6: cache-hit').met, 'missed');
    assert.equal(verdict(verdicts, '6: concurrent requests').met, 'missed', '101 validations for 100 tokens');
    assert.match(verdict(verdicts, '6: concurrent requests').measured, /; 1 sent twice/);
    assert.equal(verdict(verdicts, '1:').met, undefined);
    const smoke = targetsTable(verdicts, true);
    assert.doesNotMatch(smoke, /\| (met|missed) \|/);
    assert.match(smoke, /smoke run: not judged/);
  });
});

describe("the bench's verdicts against issue 30's restated targets (ratios to the peers in the same run)", () => {
  const admin = 'c16 -t1, direct as the cluster admin';
  const scenario1 = (gateway: number, noExtras: number, proxy: number, proxyAs: number, plain = gateway, plainNoExtras = noExtras): Verdict[] =>
    judgeTargets(
      (['c16', admin] as const).flatMap((caseName) => [
        c('1 small GET, real apiserver', caseName, 'direct', rps(1000, 1000, 1000)),
        c('1 small GET, real apiserver', caseName, 'gateway', rps(gateway, gateway, gateway)),
        c('1 small GET, real apiserver', caseName, 'gateway, no extras', rps(noExtras, noExtras, noExtras)),
        c('1 small GET, real apiserver', caseName, 'gateway, plain HTTP', rps(plain, plain, plain)),
        c('1 small GET, real apiserver', caseName, 'gateway, plain HTTP, no extras', rps(plainNoExtras, plainNoExtras, plainNoExtras)),
        c('1 small GET, real apiserver', caseName, 'gateway, HTTP/2 requests', rps(400, 400, 400)),
        ...(caseName === 'c16' ? [c('1 small GET, real apiserver', caseName, 'kubectl proxy', rps(proxy, proxy, proxy))] : []),
        c('1 small GET, real apiserver', caseName, 'kubectl proxy, --as', rps(proxyAs, proxyAs, proxyAs)),
      ]),
    );

  it('small GET: each gateway against the kubectl proxy with the same identity, as the tenant and with direct as the admin', () => {
    const even = scenario1(500, 520, 500, 520);
    const small = (vs: readonly Verdict[]): Verdict[] => vs.filter((x) => x.target.startsWith('30: small GET'));
    assert.equal(small(even).length, 8);
    // Per setup: plain HTTP into both (like for like), then TLS into the gateway, each with and without extras.
    assert.deepEqual(small(even).map((v) => v.met), ['met', 'met', 'met', 'met', 'missed', 'met', 'missed', 'met'], 'equal is enough; the gateway with extras is behind kubectl proxy --as');
    const behind = scenario1(499, 530, 500, 531);
    assert.deepEqual(small(behind).map((v) => v.met), Array(8).fill('missed'));
    const plainAhead = scenario1(499, 530, 500, 531, 501, 532);
    assert.deepEqual(small(plainAhead).map((v) => v.met), ['met', 'met', 'missed', 'missed', 'missed', 'met', 'missed', 'missed'], 'each gateway judged by its own figure');
    assert.match(verdict(plainAhead, '30: small GET, real apiserver, c16, as the tenant: gateway, plain HTTP /').measured, /gateway 0\.50x .*; kubectl proxy 0\.50x/);
    assert.match(verdict(behind, '30: small GET, real apiserver, c16, as the tenant: gateway /').measured, /gateway 0\.50x \(rounds 0\.50x to 0\.50x, median 0\.50x\); kubectl proxy 0\.50x, gateway, HTTP\/2 requests 0\.40x/);
  });

  it('a run without the peer does not judge the target', () => {
    const verdicts = judgeTargets([
      c('1 small GET, real apiserver', 'c16', 'direct', rps(1000)),
      c('1 small GET, real apiserver', 'c16', 'gateway', rps(900)),
    ]);
    assert.equal(verdict(verdicts, '30: small GET, real apiserver, c16, as the tenant: gateway /').met, undefined);
  });

  it('watch latency against the minimal relay, streams against nginx', () => {
    const verdicts = judgeTargets([
      c('4 watches', '2000 watches', 'direct', [{ eventP99Ms: 10 }]),
      c('4 watches', '2000 watches', 'gateway', [{ eventP99Ms: 25 }]),
      c('4 watches', '2000 watches', 'node:https relay', [{ eventP99Ms: 30 }]),
      c('5 streams', 'kubectl exec -i, 256 MB', 'direct', [{ mbPerS: 100 }]),
      c('5 streams', 'kubectl exec -i, 256 MB', 'gateway', [{ mbPerS: 60 }]),
      c('5 streams', 'kubectl exec -i, 256 MB', 'nginx', [{ mbPerS: 61 }]),
    ]);
    const watch = verdict(verdicts, '30: watches');
    assert.equal(watch.met, 'met');
    assert.match(watch.measured, /gateway 15\.0 ms; node:https relay 20\.0 ms/);
    assert.equal(verdict(verdicts, '30: streams, kubectl exec -i').met, 'missed');
    assert.equal(verdict(verdicts, '30: streams, docker run -i').met, undefined);
  });
});
