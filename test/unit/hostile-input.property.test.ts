import { GatewayError } from '../../src/errors.js';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { checkContainerCreate } from '../../src/docker/body-check.js';
import { parseBody } from '../../src/docker/json-body.js';
import { parseRequestTarget } from '../../src/routes/path.js';

/** Cases per property (issue 8: at least 100,000 each). */
const RUNS = 100_000;

// ---------------------------------------------------------------------------------------------------------------
// The path normalizer (invariants.md 20): what the gateway routes on must be what any upstream acts on.

/** Pieces that have broken path filters before, mixed with ordinary ones. */
const TRICKY_PIECES = [
  'k8s', 'docker', 'api', 'v1', 'namespaces', 'x', 'K8S', 'k8sfoo', '%6b8s', '%6B8s',
  '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%2e.', '%252e%252e', '...',
  '%2f', '%2F', '%5c', '%5C', '\\', '%00', '%0a', '%0d', '%09', '%7f', '%e2%80%8b',
  '%c0%ae', '%c0%af', '%e0%80%ae', '%c1%9c', '%ff', '%fe', '%', '%z', '%2', '%%', '%u002e',
  'é', '\u212a', '\u0000', '\t', ' ', '#', ';', ';..', '..;', 'a%20b', '%3f', '?', '@', ':', '~',
];

const segmentArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TRICKY_PIECES) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...TRICKY_PIECES), { minLength: 2, maxLength: 3 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constant('') },
);

const urlArb = fc
  .tuple(
    fc.array(segmentArb, { minLength: 1, maxLength: 6 }),
    fc.option(fc.constantFrom('watch=1', 'a=%2e%2e/b', 'x=/../docker', ''), { nil: undefined }),
  )
  .map(([segments, query]) => `/${segments.join('/')}${query !== undefined ? `?${query}` : ''}`);

describe('path normalizer, property-based (fast-check)', function () {
  this.timeout(120_000);

  it(`accepts only paths every normalizer reads the same way, and refuses the rest with a 400 (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(urlArb, (url) => {
        let target;
        try {
          target = parseRequestTarget(url);
        } catch (err) {
          // Refused: always a GatewayError, always a 400, never anything else.
          return err instanceof GatewayError && err.status === 400;
        }
        const { segments, rawPath, rest } = target;
        // No segment a normalizer would remove or re-split.
        for (const s of segments) {
          if (s === '.' || s === '..') return false;
          if (/[/\\\x00-\x1f\x7f]/.test(s)) return false;
        }
        if (segments.slice(0, -1).includes('')) return false;
        // The raw path is plain ASCII without backslashes: nothing to reinterpret.
        if (/[\\\x00-\x1f\x7f-\uffff#]/.test(rawPath)) return false;
        // WHATWG URL parsing (what Node, undici and browsers do) leaves it as it is: no dot segment removed, no
        // backslash turned into a slash.
        if (new URL(rawPath, 'http://gateway').pathname !== rawPath) return false;
        // Decoded, it is already in normal form: POSIX normalization changes nothing.
        const decoded = `/${segments.join('/')}`;
        if (path.posix.normalize(decoded) !== decoded) return false;
        // What goes upstream is exactly what followed the first segment, as sent.
        return url === `/${rawPath.slice(1).split('/')[0] ?? ''}${rest}`;
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The Docker body checker (invariants.md 17, 18): whatever the daemon reads from what is forwarded has no way out.

/** Go's encoding/json matches keys to fields case-insensitively with simple folding (K: Kelvin sign, ſ: long s). */
function goFold(key: string): string {
  let out = '';
  for (const ch of key) out += ch === '\u212a' ? 'k' : ch === '\u017f' ? 's' : ch.toLowerCase();
  return out;
}

/** An object as sent: its entries in order, duplicates and all. */
interface Entries {
  readonly entries: ReadonlyArray<readonly [string, Value]>;
}
type Value = null | boolean | number | string | Value[] | Entries;

function isEntries(v: Value | undefined): v is Entries {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The JSON text of a value, with every entry (duplicates included) written out. */
function text(v: Value): string {
  if (Array.isArray(v)) return `[${v.map(text).join(',')}]`;
  if (isEntries(v)) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${text(x)}`).join(',')}}`;
  return JSON.stringify(v);
}

/** The daemon's reading of a field: the last entry whose key folds to the field's name. */
function goField(v: Value | undefined, name: string): Value | undefined {
  if (!isEntries(v)) return undefined;
  let found: Value | undefined;
  for (const [k, x] of v.entries) if (goFold(k) === goFold(name)) found = x;
  return found;
}

/** A parsed JSON value as entries, for reading the forwarded body the daemon's way. */
function toEntries(v: unknown): Value {
  if (Array.isArray(v)) return v.map(toEntries);
  if (v !== null && typeof v === 'object') return { entries: Object.entries(v).map(([k, x]) => [k, toEntries(x)] as const) };
  return v as Value;
}

const notEmpty = (v: Value | undefined): boolean =>
  v !== undefined && v !== null && v !== false && v !== '' && v !== 0 && !(Array.isArray(v) && v.length === 0) && !(isEntries(v) && v.entries.length === 0);

/** Why the daemon, reading `body`, would give the container a way into the host; undefined when it would not. */
function escape(body: Value): string | undefined {
  const hc = goField(body, 'HostConfig');
  if (goField(hc, 'Privileged') === true) return 'Privileged';
  for (const name of ['CapAdd', 'Devices', 'VolumesFrom', 'Sysctls', 'CgroupParent']) if (notEmpty(goField(hc, name))) return name;
  // The daemon reads `source:target[:mode]` with an absolute source as a bind of the host path; a relative source is
  // a volume name, and a lone path an anonymous volume at that path in the container.
  const binds = goField(hc, 'Binds');
  if (Array.isArray(binds) && binds.some((b) => typeof b !== 'string' || (b.split(':').length > 1 && b.startsWith('/')))) return 'Binds';
  for (const name of ['NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode']) {
    const mode = goField(hc, name);
    if (typeof mode === 'string' && mode.toLowerCase() === 'host') return `${name}=host`;
  }
  const mounts = goField(hc, 'Mounts');
  if (Array.isArray(mounts) && mounts.some((m) => typeof goField(m, 'Type') === 'string' && String(goField(m, 'Type')).toLowerCase() === 'bind')) return 'bind mount';
  return undefined;
}

/** A key in some spelling the daemon would still match: case variants, the Kelvin sign for k, the long s for s. */
function spelled(name: string): fc.Arbitrary<string> {
  return fc.array(fc.integer({ min: 0, max: 3 }), { minLength: name.length, maxLength: name.length }).map((choices) =>
    [...name]
      .map((ch, i) => {
        const c = choices[i] as number;
        if (c === 3 && /k/i.test(ch)) return '\u212a';
        if (c === 3 && /s/i.test(ch)) return '\u017f';
        return c % 2 === 0 ? ch : ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
      })
      .join(''),
  );
}

const scalarArb = fc.constantFrom<Value>(true, false, null, 0, 1, '', 'host', 'HOST', 'bridge', 'container:abc', '/:/host', 'volume', 'bind', 'BIND');
const listArb = fc.array(fc.constantFrom<Value>('/:/host', 'SYS_ADMIN', '/dev/sda', 'other', '', 'data:/data', 'data:/data:ro'), { maxLength: 2 });
const mountArb: fc.Arbitrary<Value> = fc
  .array(fc.tuple(fc.oneof(spelled('Type'), spelled('Source'), spelled('Target')), fc.constantFrom<Value>('bind', 'volume', 'BIND', '/', 'data', '/data')), { maxLength: 3 })
  .map((entries) => ({ entries }));

const HOST_CONFIG_FIELDS = ['Privileged', 'Binds', 'CapAdd', 'Devices', 'VolumesFrom', 'Sysctls', 'CgroupParent', 'NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'Memory'];

const hostConfigArb: fc.Arbitrary<Value> = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...HOST_CONFIG_FIELDS).chain(spelled), fc.oneof(scalarArb, listArb)),
      fc.tuple(spelled('Mounts'), fc.array(mountArb, { maxLength: 2 })),
    ),
    { maxLength: 5 },
  )
  .map((entries) => ({ entries: entries as Array<[string, Value]> }));

/** A container-create body: Image, and zero to two HostConfig entries in any spelling (so duplicates happen). */
const createBodyArb: fc.Arbitrary<Value> = fc
  .tuple(fc.array(fc.tuple(spelled('HostConfig'), hostConfigArb), { maxLength: 2 }), fc.boolean())
  .map(([hostConfigs, imageFirst]) => {
    const image: [string, Value] = ['Image', 'busybox'];
    return { entries: imageFirst ? [image, ...hostConfigs] : [...hostConfigs, image] };
  });

describe('Docker body checker, property-based (fast-check)', function () {
  this.timeout(180_000);

  it(`forwards nothing the daemon would read as a host escape, and refuses every body that carries one (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(createBodyArb, (body) => {
        const raw = Buffer.from(text(body));
        let forwarded: string;
        try {
          const parsed = parseBody(raw);
          checkContainerCreate(parsed);
          forwarded = JSON.stringify(parsed);
        } catch (err) {
          // Refused: with a 400 that names the problem, never a crash.
          return err instanceof GatewayError && err.status === 400 && err.message.length > 0;
        }
        // What the daemon reads from the forwarded body has no way out ...
        if (escape(toEntries(JSON.parse(forwarded))) !== undefined) return false;
        // ... and a body the daemon would have read as an escape was refused, not quietly changed.
        return escape(body) === undefined;
      }),
      { numRuns: RUNS },
    );
  });

  it('the generators reach both outcomes, with duplicates and case variants (so the property is not vacuous)', () => {
    const sample = fc.sample(createBodyArb, { numRuns: 5000, seed: 7 });
    const escapes = sample.filter((b) => escape(b) !== undefined).length;
    const duplicated = sample.filter((b) => {
      const hc = goField(b, 'HostConfig');
      const keys = isEntries(hc) ? hc.entries.map(([k]) => goFold(k)) : [];
      return new Set(keys).size < keys.length;
    }).length;
    const variant = sample.filter((b) => isEntries(b) && b.entries.some(([k]) => k !== 'Image' && k !== 'HostConfig')).length;
    assert.ok(escapes > 500 && escapes < 4500, `${escapes} of 5000 bodies carry an escape`);
    assert.ok(duplicated > 200, `${duplicated} of 5000 bodies repeat a HostConfig field`);
    assert.ok(variant > 500, `${variant} of 5000 bodies spell HostConfig another way`);
  });
});
