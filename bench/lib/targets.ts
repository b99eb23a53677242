import { median, type CaseResult } from './measure.js';

export type Outcome = 'met' | 'missed' | 'split';

/** One of issue 7's targets, judged from one run's results. */
export interface Verdict {
  readonly target: string;
  /** What this run measured, with the peers' figures where they make the same comparison. */
  readonly measured: string;
  /**
   * `split`: the ratio of the medians and the median of the rounds' own ratios disagree (a noisy run). undefined: the
   * run did not have the cases the target needs (an `--only` run, a failed scenario).
   */
  readonly met: Outcome | undefined;
}

const x = (v: number): string => `${v.toFixed(2)}x`;
const ms = (v: number): string => `${v.toFixed(1)} ms`;

type Find = (scenario: string, caseName: string | RegExp, target: string) => CaseResult | undefined;

function finder(results: readonly CaseResult[]): Find {
  return (scenario, caseName, target) =>
    results.find(
      (r) => r.scenario.startsWith(`${scenario} `) && (typeof caseName === 'string' ? r.case === caseName : caseName.test(r.case)) && r.target === target,
    );
}

interface Ratio {
  /** The ratio of the two targets' medians (the table's "vs direct"). */
  readonly value: number;
  /** The median of the rounds' own ratios: each round measures every target in turn, so slow drift cancels. */
  readonly roundsMedian: number | undefined;
  /** " (rounds 0.58x to 0.92x, median 0.66x)", or nothing for a single round. */
  readonly rounds: string;
}

/** `a`'s metric over `b`'s (each target's medians), with the rounds' own ratios. */
function ratio(a: CaseResult, b: CaseResult, key: string): Ratio {
  const value = (a.metrics[key] as number) / (b.metrics[key] as number);
  const perRound: number[] = [];
  for (let i = 0; i < Math.min(a.runs.length, b.runs.length); i += 1) {
    const av = a.runs[i]?.[key];
    const bv = b.runs[i]?.[key];
    if (av !== undefined && bv !== undefined) perRound.push(av / bv);
  }
  const sorted = perRound.filter(Number.isFinite).sort((p, q) => p - q);
  if (sorted.length < 2) return { value, roundsMedian: undefined, rounds: '' };
  const roundsMedian = median(sorted);
  return { value, roundsMedian, rounds: ` (rounds ${x(sorted[0] as number)} to ${x(sorted[sorted.length - 1] as number)}, median ${x(roundsMedian)})` };
}

/** Met when both estimates of a ratio meet the bound, missed when neither does, split otherwise. */
function judge(r: Ratio, meets: (v: number) => boolean): Outcome {
  const first = meets(r.value);
  const second = r.roundsMedian === undefined ? first : meets(r.roundsMedian);
  return first && second ? 'met' : !first && !second ? 'missed' : 'split';
}

const outcome = (ok: boolean): Outcome => (ok ? 'met' : 'missed');

/** "; nginx 66 KB, kubectl proxy 43 KB": each peer the run has, as `show` puts its figure (undefined: none). */
function peerFigures(find: Find, scenario: string, caseName: string | RegExp, names: readonly string[], show: (peer: CaseResult) => string | undefined): string {
  const parts = names.flatMap((name) => {
    const peer = find(scenario, caseName, name);
    const figure = peer === undefined ? undefined : show(peer);
    return figure === undefined ? [] : [`${name} ${figure}`];
  });
  return parts.length > 0 ? `; ${parts.join(', ')}` : '';
}

/** "; nginx 0.86x, kubectl proxy 0.67x": how the peers did on the same comparison. */
function peers(find: Find, scenario: string, caseName: string | RegExp, names: readonly string[], against: CaseResult, key: string): string {
  return peerFigures(find, scenario, caseName, names, (peer) => (peer.metrics[key] === undefined ? undefined : x(ratio(peer, against, key).value)));
}

/** Issue 7's targets against one run. A target whose cases the run lacks is reported as not judged. */
export function judgeTargets(results: readonly CaseResult[]): Verdict[] {
  const find = finder(results);
  const verdicts: Verdict[] = [];
  const notJudged = (target: string): void => {
    verdicts.push({ target, measured: 'not in this run', met: undefined });
  };

  // 1: real apiserver, c16.
  {
    const target = '1: small GET, real apiserver, c16: gateway >= 0.70x direct and ahead of kubectl proxy';
    const [direct, gateway, kubectlProxy] = ['direct', 'gateway', 'kubectl proxy'].map((t) => find('1', 'c16', t));
    if (direct === undefined || gateway === undefined) notJudged(target);
    else {
      const r = ratio(gateway, direct, 'rps');
      const ahead = kubectlProxy === undefined || (gateway.metrics.rps as number) > (kubectlProxy.metrics.rps as number);
      verdicts.push({
        target,
        measured: `gateway ${x(r.value)}${r.rounds}${peers(find, '1', 'c16', ['kubectl proxy', 'nginx', 'node:https relay'], direct, 'rps')}`,
        met: ahead ? judge(r, (v) => v >= 0.7) : 'missed',
      });
    }
  }

  // 2: fast upstream, c16: against the minimal proxy, and the p99 the gateway adds.
  {
    const target = '2: small GET, fast upstream, c16: gateway >= 0.85x the minimal node:http proxy';
    const [direct, gateway, minimal] = ['direct', 'gateway', 'node:http proxy'].map((t) => find('2', 'c16', t));
    if (gateway === undefined || minimal === undefined) notJudged(target);
    else {
      const r = ratio(gateway, minimal, 'rps');
      const cpu =
        gateway.metrics.cpuUsPerReq !== undefined && minimal.metrics.cpuUsPerReq !== undefined
          ? `; CPU a request ${gateway.metrics.cpuUsPerReq.toFixed(0)} against ${minimal.metrics.cpuUsPerReq.toFixed(0)} µs`
          : '';
      verdicts.push({ target, measured: `gateway ${x(r.value)}${r.rounds}${cpu}`, met: judge(r, (v) => v >= 0.85) });
    }
    const p99Target = '2: small GET, fast upstream, c16: p99 added by the gateway <= 2 ms';
    if (direct === undefined || gateway === undefined) notJudged(p99Target);
    else {
      const added = (gateway.metrics.p99Ms as number) - (direct.metrics.p99Ms as number);
      const minimalAdded = minimal === undefined ? '' : `; node:http proxy ${ms((minimal.metrics.p99Ms as number) - (direct.metrics.p99Ms as number))}`;
      verdicts.push({ target: p99Target, measured: `gateway ${ms(added)}${minimalAdded}`, met: outcome(added <= 2) });
    }
  }

  // 3: large LIST.
  {
    const target = '3: large LIST: total time <= 1.15x direct';
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('3', /ConfigMaps$/, t));
    if (direct === undefined || gateway === undefined) notJudged(target);
    else {
      // Time over direct's time, as the target is stated (the table's ratio is its inverse).
      const r = ratio(gateway, direct, 'totalMs');
      const peer = peers(find, '3', /ConfigMaps$/, ['nginx', 'kubectl proxy', 'node:https relay'], direct, 'totalMs');
      verdicts.push({ target, measured: `gateway ${x(r.value)}${r.rounds}${peer}`, met: judge(r, (v) => v <= 1.15) });
    }
    const rssTarget = '3: large LIST: gateway RSS grows by less than 30 MB';
    const growth = gateway?.metrics.rssGrowthMb;
    if (growth === undefined) notJudged(rssTarget);
    else verdicts.push({ target: rssTarget, measured: `${growth.toFixed(1)} MB for ${(gateway?.metrics.mb ?? Number.NaN).toFixed(1)} MB`, met: outcome(growth < 30) });
  }

  // 4: watches.
  {
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('4', /watches$/, t));
    const rssTarget = '4: watches: under 60 KB of gateway RSS per watch';
    const perWatch = gateway?.metrics.rssPerWatchKb;
    if (perWatch === undefined) notJudged(rssTarget);
    else {
      const peer = peerFigures(find, '4', /watches$/, ['kubectl proxy', 'nginx', 'node:https relay'], (p) =>
        p.metrics.rssPerWatchKb === undefined ? undefined : `${p.metrics.rssPerWatchKb.toFixed(0)} KB`,
      );
      verdicts.push({ target: rssTarget, measured: `${perWatch.toFixed(1)} KB${peer}`, met: outcome(perWatch < 60) });
    }
    const p99Target = '4: watches: event latency p99 added <= 20 ms';
    if (direct === undefined || gateway === undefined) notJudged(p99Target);
    else {
      const added = (p: CaseResult): number => (p.metrics.eventP99Ms as number) - (direct.metrics.eventP99Ms as number);
      const peer = peerFigures(find, '4', /watches$/, ['nginx', 'kubectl proxy', 'node:https relay'], (p) => ms(added(p)));
      verdicts.push({ target: p99Target, measured: `gateway ${ms(added(gateway))}${peer}`, met: outcome(added(gateway) <= 20) });
    }
  }

  // 5: streams, each kind.
  for (const [kind, pattern, peerNames] of [
    ['kubectl exec -i', /^kubectl exec -i/, ['nginx', 'kubectl proxy']],
    ['docker attach', /^docker run -i \(attach\)/, ['engine TLS', 'nginx']],
  ] as const) {
    const target = `5: streams, ${kind}: >= 0.8x direct MB/s`;
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('5', pattern, t));
    if (direct === undefined || gateway === undefined) notJudged(target);
    else {
      const r = ratio(gateway, direct, 'mbPerS');
      verdicts.push({ target, measured: `gateway ${x(r.value)}${r.rounds}${peers(find, '5', pattern, peerNames, direct, 'mbPerS')}`, met: judge(r, (v) => v >= 0.8) });
    }
  }

  // 6: authentication.
  {
    const target = '6: cache-hit authentication <= 20 µs';
    const perHit = find('6', 'cache hit, in-process', 'gateway')?.metrics.usPerHit;
    if (perHit === undefined) notJudged(target);
    else verdicts.push({ target, measured: `${perHit.toFixed(2)} µs`, met: outcome(perHit <= 20) });
    const burstTarget = '6: concurrent requests with N new tokens make exactly N Keystone validations';
    const burst = results.find((r) => r.scenario.startsWith('6 ') && / new tokens$/.test(r.case));
    const tokens = burst === undefined ? undefined : Number(/(\d+) new tokens$/.exec(burst.case)?.[1]);
    const validations = burst?.metrics.keystoneValidations;
    const retries = burst?.metrics.keystoneRetries ?? 0;
    if (burst === undefined || tokens === undefined || validations === undefined) notJudged(burstTarget);
    else verdicts.push({ target: burstTarget, measured: `${validations} validations for ${tokens} new tokens (${burst.case})${retries > 0 ? `; ${retries} sent twice (Keystone kept answering other calls while the first try hung)` : ''}`, met: outcome(validations === tokens) });
  }
  return verdicts;
}

/** The verdicts as a markdown table; a smoke run's numbers mean nothing, so it judges nothing. */
export function targetsTable(verdicts: readonly Verdict[], smoke: boolean): string {
  const lines = ['| target (issue 7) | measured (ratio of the medians; the rounds\' own ratios) | verdict |', '| --- | --- | --- |'];
  for (const v of verdicts) {
    const verdict =
      v.met === undefined ? '-' : smoke ? 'smoke run: not judged' : v.met === 'split' ? 'unclear: the rounds disagree with the medians' : v.met;
    lines.push(`| ${v.target} | ${v.measured} | ${verdict} |`);
  }
  return lines.join('\n');
}
