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
  /** The gateway's figure the verdict is about, in `unit`, for judging several runs together (summary.ts). */
  readonly figure?: number;
  /** The same figure for each peer the run has. */
  readonly peerFigures?: Readonly<Record<string, number>>;
  readonly bound?: Bound;
  readonly unit?: Unit;
}

export type Unit = 'x' | 'ms' | 'MB' | 'KB' | 'µs' | 'validations';

/**
 * What a target's figure must be; `aheadOf`: also more than that peer's figure, when the run has the peer;
 * `notBehind` / `notAbove`: at least / at most that peer's figure (issue 30: ratios to the peers in the same run).
 */
export interface Bound {
  readonly atLeast?: number;
  readonly atMost?: number;
  readonly below?: number;
  readonly equals?: number;
  readonly aheadOf?: string;
  readonly notBehind?: string;
  readonly notAbove?: string;
}

/** Whether `figure` (with the peers' figures beside it) is within `bound`. */
export function meets(bound: Bound, figure: number, peerFigures: Readonly<Record<string, number>> = {}): boolean {
  const peer = bound.aheadOf === undefined ? undefined : peerFigures[bound.aheadOf];
  const floor = bound.notBehind === undefined ? undefined : peerFigures[bound.notBehind];
  const ceiling = bound.notAbove === undefined ? undefined : peerFigures[bound.notAbove];
  // A bound on a peer the run lacks cannot be met: the restated targets are nothing but the comparison.
  if ((bound.notBehind !== undefined && floor === undefined) || (bound.notAbove !== undefined && ceiling === undefined)) return false;
  return (
    (peer === undefined || figure > peer) &&
    (floor === undefined || figure >= floor) &&
    (ceiling === undefined || figure <= ceiling) &&
    (bound.atLeast === undefined || figure >= bound.atLeast) &&
    (bound.atMost === undefined || figure <= bound.atMost) &&
    (bound.below === undefined || figure < bound.below) &&
    (bound.equals === undefined || figure === bound.equals)
  );
}

/** A figure as the tables print it. */
export function show(value: number, unit: Unit): string {
  switch (unit) {
    case 'x':
      return `${value.toFixed(2)}x`;
    case 'ms':
      return `${value.toFixed(1)} ms`;
    case 'µs':
      return `${value.toFixed(2)} µs`;
    case 'validations':
      return `${value.toFixed(0)} validations`;
    default:
      return `${value.toFixed(1)} ${unit}`;
  }
}

const x = (v: number): string => show(v, 'x');
const ms = (v: number): string => show(v, 'ms');

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
function judge(r: Ratio, bound: Bound, peerValues: Readonly<Record<string, number>> = {}): Outcome {
  const first = meets(bound, r.value, peerValues);
  const second = r.roundsMedian === undefined ? first : meets(bound, r.roundsMedian, peerValues);
  return first && second ? 'met' : !first && !second ? 'missed' : 'split';
}

const outcome = (ok: boolean): Outcome => (ok ? 'met' : 'missed');

interface Peers {
  /** "; nginx 66.0 KB, kubectl proxy 43.0 KB", or nothing. */
  readonly text: string;
  readonly values: Readonly<Record<string, number>>;
}

/** Each peer the run has, with its figure (`figure` gives undefined when the peer has none). */
function peerFigures(find: Find, scenario: string, caseName: string | RegExp, names: readonly string[], figure: (peer: CaseResult) => number | undefined, unit: Unit): Peers {
  const values: Record<string, number> = {};
  for (const name of names) {
    const peer = find(scenario, caseName, name);
    const value = peer === undefined ? undefined : figure(peer);
    if (value !== undefined) values[name] = value;
  }
  const parts = Object.entries(values).map(([name, value]) => `${name} ${show(value, unit)}`);
  return { text: parts.length > 0 ? `; ${parts.join(', ')}` : '', values };
}

/** How the peers did on the same comparison: their `key` over `against`'s. */
function peers(find: Find, scenario: string, caseName: string | RegExp, names: readonly string[], against: CaseResult, key: string): Peers {
  return peerFigures(find, scenario, caseName, names, (peer) => (peer.metrics[key] === undefined ? undefined : ratio(peer, against, key).value), 'x');
}

/** Issue 7's and issue 30's targets against one run. A target whose cases the run lacks is reported as not judged. */
export function judgeTargets(results: readonly CaseResult[]): Verdict[] {
  const find = finder(results);
  const verdicts: Verdict[] = [];
  const notJudged = (target: string): void => {
    verdicts.push({ target, measured: 'not in this run', met: undefined });
  };
  /** A verdict on a single figure (no rounds to disagree). */
  const single = (target: string, measured: string, figure: number, unit: Unit, bound: Bound, peerValues: Readonly<Record<string, number>> = {}): void => {
    verdicts.push({ target, measured, met: outcome(meets(bound, figure, peerValues)), figure, peerFigures: peerValues, bound, unit });
  };
  /** A verdict on a ratio, judged from its medians and from its rounds. */
  const ratioVerdict = (target: string, r: Ratio, bound: Bound, peer: Peers, extra = ''): void => {
    verdicts.push({ target, measured: `gateway ${x(r.value)}${r.rounds}${peer.text}${extra}`, met: judge(r, bound, peer.values), figure: r.value, peerFigures: peer.values, bound, unit: 'x' });
  };

  // 1: real apiserver, c16.
  {
    const target = '1: small GET, real apiserver, c16: gateway >= 0.70x direct and ahead of kubectl proxy';
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('1', 'c16', t));
    if (direct === undefined || gateway === undefined) notJudged(target);
    else ratioVerdict(target, ratio(gateway, direct, 'rps'), { atLeast: 0.7, aheadOf: 'kubectl proxy' }, peers(find, '1', 'c16', ['kubectl proxy', 'nginx', 'node:https relay'], direct, 'rps'));
  }

  // 2: fast upstream, c16: against the minimal proxy, and the p99 the gateway adds.
  {
    const target = '2: small GET, fast upstream, c16: gateway >= 0.85x the minimal node:http proxy';
    const [direct, gateway, minimal] = ['direct', 'gateway', 'node:http proxy'].map((t) => find('2', 'c16', t));
    if (gateway === undefined || minimal === undefined) notJudged(target);
    else {
      const cpu =
        gateway.metrics.cpuUsPerReq !== undefined && minimal.metrics.cpuUsPerReq !== undefined
          ? `; CPU a request ${gateway.metrics.cpuUsPerReq.toFixed(0)} against ${minimal.metrics.cpuUsPerReq.toFixed(0)} µs`
          : '';
      ratioVerdict(target, ratio(gateway, minimal, 'rps'), { atLeast: 0.85 }, { text: '', values: {} }, cpu);
    }
    const p99Target = '2: small GET, fast upstream, c16: p99 added by the gateway <= 2 ms';
    if (direct === undefined || gateway === undefined) notJudged(p99Target);
    else {
      const added = (p: CaseResult): number => (p.metrics.p99Ms as number) - (direct.metrics.p99Ms as number);
      const peer = peerFigures(find, '2', 'c16', ['node:http proxy'], added, 'ms');
      single(p99Target, `gateway ${ms(added(gateway))}${peer.text}`, added(gateway), 'ms', { atMost: 2 }, peer.values);
    }
  }

  // 3: large LIST.
  {
    const target = '3: large LIST: total time <= 1.15x direct';
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('3', /ConfigMaps$/, t));
    // Time over direct's time, as the target is stated (the table's ratio is its inverse).
    if (direct === undefined || gateway === undefined) notJudged(target);
    else ratioVerdict(target, ratio(gateway, direct, 'totalMs'), { atMost: 1.15 }, peers(find, '3', /ConfigMaps$/, ['nginx', 'kubectl proxy', 'node:https relay'], direct, 'totalMs'));
    const rssTarget = '3: large LIST: gateway RSS grows by less than 30 MB';
    const growth = gateway?.metrics.rssGrowthMb;
    if (growth === undefined) notJudged(rssTarget);
    else single(rssTarget, `${growth.toFixed(1)} MB for ${(gateway?.metrics.mb ?? Number.NaN).toFixed(1)} MB`, growth, 'MB', { below: 30 });
  }

  // 4: watches.
  {
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('4', /watches$/, t));
    const rssTarget = '4: watches: under 60 KB of gateway RSS per watch';
    const perWatch = gateway?.metrics.rssPerWatchKb;
    if (perWatch === undefined) notJudged(rssTarget);
    else {
      const peer = peerFigures(find, '4', /watches$/, ['kubectl proxy', 'nginx', 'node:https relay'], (p) => p.metrics.rssPerWatchKb, 'KB');
      single(rssTarget, `${perWatch.toFixed(1)} KB${peer.text}`, perWatch, 'KB', { below: 60 }, peer.values);
    }
    const p99Target = '4: watches: event latency p99 added <= 20 ms';
    if (direct === undefined || gateway === undefined) notJudged(p99Target);
    else {
      const added = (p: CaseResult): number => (p.metrics.eventP99Ms as number) - (direct.metrics.eventP99Ms as number);
      const peer = peerFigures(find, '4', /watches$/, ['nginx', 'kubectl proxy', 'node:https relay'], added, 'ms');
      single(p99Target, `gateway ${ms(added(gateway))}${peer.text}`, added(gateway), 'ms', { atMost: 20 }, peer.values);
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
    else ratioVerdict(target, ratio(gateway, direct, 'mbPerS'), { atLeast: 0.8 }, peers(find, '5', pattern, peerNames, direct, 'mbPerS'));
  }

  // 6: authentication.
  {
    const target = '6: cache-hit authentication <= 20 µs';
    const perHit = find('6', 'cache hit, in-process', 'gateway')?.metrics.usPerHit;
    if (perHit === undefined) notJudged(target);
    else single(target, `${perHit.toFixed(2)} µs`, perHit, 'µs', { atMost: 20 });
    const burstTarget = '6: concurrent requests with N new tokens make exactly N Keystone validations';
    const burst = results.find((r) => r.scenario.startsWith('6 ') && / new tokens$/.test(r.case));
    const tokens = burst === undefined ? undefined : Number(/(\d+) new tokens$/.exec(burst.case)?.[1]);
    const validations = burst?.metrics.keystoneValidations;
    const retries = burst?.metrics.keystoneRetries ?? 0;
    if (burst === undefined || tokens === undefined || validations === undefined) notJudged(burstTarget);
    else {
      const measured = `${validations} validations for ${tokens} new tokens (${burst.case})${retries > 0 ? `; ${retries} sent twice (Keystone kept answering other calls while the first try hung)` : ''}`;
      single(burstTarget, measured, validations, 'validations', { equals: tokens });
    }
  }
  judgeIssue30(find, verdicts, notJudged, single, ratioVerdict);
  return verdicts;
}

/**
 * Issue 30's restated targets: each a ratio to a peer in the same run (the machine's load moves every target alike).
 * Scenario 1 by both setups (direct as the tenant; direct as the cluster admin, wrk -t1, as the independent
 * measurement ran), the gateway with extras against kubectl proxy given the same identity, and without extras
 * against kubectl proxy with --as/--as-group; watch latency against the minimal relay; streams against nginx.
 */
function judgeIssue30(
  find: Find,
  verdicts: Verdict[],
  notJudged: (target: string) => void,
  single: (target: string, measured: string, figure: number, unit: Unit, bound: Bound, peerValues?: Readonly<Record<string, number>>) => void,
  ratioVerdict: (target: string, r: Ratio, bound: Bound, peer: Peers, extra?: string) => void,
): void {
  for (const [caseName, setup] of [
    ['c16', 'as the tenant'],
    ['c16 -t1, direct as the cluster admin', 'direct as the cluster admin (-t1)'],
  ] as const) {
    const withExtras = caseName === 'c16' ? 'kubectl proxy' : 'kubectl proxy, --as';
    // Plain HTTP into both (kubectl proxy has no TLS listener) is like for like; TLS into the gateway is shown too.
    for (const [gatewayName, peerName] of [
      ['gateway, plain HTTP', withExtras],
      ['gateway, plain HTTP, no extras', 'kubectl proxy, --as'],
      ['gateway', withExtras],
      ['gateway, no extras', 'kubectl proxy, --as'],
    ] as const) {
      const target = `30: small GET, real apiserver, c16, ${setup}: ${gatewayName} / direct >= ${peerName} / direct`;
      const direct = find('1', caseName, 'direct');
      const gateway = find('1', caseName, gatewayName);
      if (direct === undefined || gateway === undefined || find('1', caseName, peerName) === undefined) notJudged(target);
      else ratioVerdict(target, ratio(gateway, direct, 'rps'), { notBehind: peerName }, peers(find, '1', caseName, [peerName, 'gateway, HTTP/2 requests', 'gateway, before'], direct, 'rps'));
    }
  }
  {
    const target = '30: watches: event latency p99 added <= the minimal node:https relay\'s';
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('4', /watches$/, t));
    if (direct === undefined || gateway === undefined || find('4', /watches$/, 'node:https relay') === undefined) notJudged(target);
    else {
      const added = (p: CaseResult): number => (p.metrics.eventP99Ms as number) - (direct.metrics.eventP99Ms as number);
      const peer = peerFigures(find, '4', /watches$/, ['node:https relay'], added, 'ms');
      single(target, `gateway ${ms(added(gateway))}${peer.text}`, added(gateway), 'ms', { notAbove: 'node:https relay' }, peer.values);
    }
  }
  for (const [kind, pattern] of [
    ['kubectl exec -i', /^kubectl exec -i/],
    ['docker run -i', /^docker run -i \(attach\)/],
  ] as const) {
    const target = `30: streams, ${kind}: gateway >= nginx (TLS both ways), MB/s`;
    const [direct, gateway] = ['direct', 'gateway'].map((t) => find('5', pattern, t));
    if (direct === undefined || gateway === undefined || find('5', pattern, 'nginx') === undefined) notJudged(target);
    else ratioVerdict(target, ratio(gateway, direct, 'mbPerS'), { notBehind: 'nginx' }, peers(find, '5', pattern, ['nginx'], direct, 'mbPerS'));
  }
}

/** The verdicts as a markdown table; a smoke run's numbers mean nothing, so it judges nothing. */
export function targetsTable(verdicts: readonly Verdict[], smoke: boolean): string {
  const lines = ['| target (issue) | measured (ratio of the medians; the rounds\' own ratios) | verdict |', '| --- | --- | --- |'];
  for (const v of verdicts) {
    const verdict =
      v.met === undefined ? '-' : smoke ? 'smoke run: not judged' : v.met === 'split' ? 'unclear: the rounds disagree with the medians' : v.met;
    lines.push(`| ${v.target} | ${v.measured} | ${verdict} |`);
  }
  return lines.join('\n');
}
