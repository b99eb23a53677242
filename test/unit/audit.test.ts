import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { auditLine, auditPath, createAuditTrail, isoNow, type AuditRecord } from '../../src/observability/audit.js';
import { LineCollector } from '../helpers/memory-audit.js';

const record: AuditRecord = {
  kind: 'request',
  requestId: 'r-1',
  coe: 'k8s',
  method: 'GET',
  path: '/k8s/api/v1/namespaces/os-alpha/pods',
  status: 200,
  user: { id: 'u1', name: 'alice', domainId: 'default' },
  project: { id: 'p1', name: 'alpha', domainId: 'default' },
  namespace: 'os-alpha',
  bytesIn: 0,
  bytesOut: 512,
  durationMs: 3.2,
  upstreamLatencyMs: 2.1,
  client: '127.0.0.1',
};

/** AuditRecord's fields in their declared order. */
const fieldOrder = ['kind', 'requestId', 'coe', 'cluster', 'method', 'path', 'status', 'user', 'project', 'scope', 'domain', 'applicationCredentialId', 'namespace', 'object', 'bytesIn', 'bytesOut', 'durationMs', 'upstreamLatencyMs', 'client', 'reason'];

describe('audit trail', () => {
  describe('auditPath: query values that may be credentials never reach the trail', () => {
    const cases: Array<[string, string]> = [
      ['/k8s/api/v1/pods?watch=1&labelSelector=app%3Dweb', '/k8s/api/v1/pods?watch=1&labelSelector=app%3Dweb'],
      ['/k8s/api?token=abc&limit=5', '/k8s/api?token=REDACTED&limit=5'],
      ['/x?access_token=abc', '/x?access_token=REDACTED'],
      ['/x?X-Auth-Token=abc&b=2', '/x?X-Auth-Token=REDACTED&b=2'],
      ['/x?password=p&user=u', '/x?password=REDACTED&user=u'],
      ['/x?app_secret=s', '/x?app_secret=REDACTED'],
      ['/x?%74oken=abc', '/x?%74oken=REDACTED'],
      ['/x?registry%5Fauth=abc', '/x?registry%5Fauth=REDACTED'],
      ['/x?token', '/x?token'],
      ['/x?%zz=1', '/x?%zz=1'],
      ['/plain/path', '/plain/path'],
    ];
    for (const [input, want] of cases) {
      it(`${input} -> ${want}`, () => assert.equal(auditPath(input), want));
    }
  });

  it('writes one JSON line per record to the given stream, with type audit and an ISO time', () => {
    const out = new LineCollector();
    const trail = createAuditTrail({ destination: 'stdout' }, out);
    trail.record(record);
    trail.record({ ...record, requestId: 'r-2', status: 401, reason: 'no token' });
    assert.equal(out.lines.length, 2);
    const first = JSON.parse(out.lines[0] as string) as Record<string, unknown>;
    assert.equal(first.type, 'audit');
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(first.level, undefined, 'audit records carry no log level');
    assert.deepEqual(first.user, record.user);
    assert.equal(first.namespace, 'os-alpha');
    assert.equal((JSON.parse(out.lines[1] as string) as Record<string, unknown>).reason, 'no token');
  });

  it('writes to a file, creating its folder, and reopens it after rotation (SIGHUP)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-audit-'));
    try {
      const file = path.join(dir, 'sub', 'audit.log');
      // The file is opened (synchronously) when the trail is made, and again by reopen(): no wait is needed.
      const trail = createAuditTrail({ destination: 'file', file }, new LineCollector());
      trail.record(record);
      trail.flush();
      renameSync(file, `${file}.1`);
      trail.reopen();
      trail.record({ ...record, requestId: 'after-rotation' });
      trail.flush();
      const rotated = readFileSync(`${file}.1`, 'utf8').trim().split('\n');
      const fresh = readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(rotated.length, 1);
      assert.equal((JSON.parse(rotated[0] as string) as AuditRecord).requestId, 'r-1');
      assert.equal(fresh.length, 1);
      assert.equal((JSON.parse(fresh[0] as string) as AuditRecord).requestId, 'after-rotation');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('auditLine: the hand-composed line is the JSON of the record', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const part = fc.record({ id: text, name: text, domainId: text });
    const num = fc.oneof(fc.nat(), fc.double(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0));
    const recordArb: fc.Arbitrary<AuditRecord> = fc.record(
      {
        kind: fc.constantFrom('request' as const, 'session' as const),
        requestId: text,
        coe: text,
        cluster: text,
        method: text,
        path: text,
        status: fc.integer({ min: 0, max: 999 }),
        user: part,
        project: part,
        scope: fc.constantFrom('domain' as const, 'system' as const),
        domain: fc.record({ id: text, name: text }),
        applicationCredentialId: text,
        namespace: text,
        object: text,
        bytesIn: num,
        bytesOut: num,
        durationMs: num,
        upstreamLatencyMs: num,
        client: text,
        reason: text,
      },
      { requiredKeys: ['kind', 'requestId', 'coe', 'method', 'path', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'client'] },
    );

    it('parses back to exactly what JSON.stringify would give, for any fields and strings (10,000 records)', () => {
      fc.assert(
        fc.property(recordArb, (r) => {
          const line = auditLine(r, '2026-11-30T10:00:00.000Z');
          assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'), 'one line');
          assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify({ type: 'audit', time: '2026-11-30T10:00:00.000Z', ...r })));
        }),
        { numRuns: 10_000 },
      );
    });

    it('keeps the record\'s field order', () => {
      const keys = Object.keys(JSON.parse(auditLine({ ...record, reason: 'r', object: 'o', cluster: 'west' })) as object);
      assert.deepEqual(keys, ['type', 'time', ...Object.keys({ ...record, reason: 'r', object: 'o', cluster: 'west' }).sort((a, b) => fieldOrder.indexOf(a) - fieldOrder.indexOf(b))]);
    });

    it('writes the time as toISOString would, whether the millisecond, the second or the day changed since the last line', () => {
      // Before 1970 and after 9999 too (toISOString writes six-digit signed years there).
      const instants = fc.array(fc.integer({ min: -8_640_000_000_000_000 + 1_000_000, max: 8_640_000_000_000_000 - 1_000_000 }), { minLength: 1, maxLength: 20 });
      fc.assert(
        fc.property(instants, fc.array(fc.integer({ min: 0, max: 1500 }), { maxLength: 20 }), (starts, steps) => {
          for (const start of starts) {
            let ms = start;
            for (const step of [0, ...steps]) {
              ms += step;
              assert.equal(isoNow(ms), new Date(ms).toISOString());
            }
          }
        }),
        { numRuns: 2_000 },
      );
      for (const ms of [Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2027, 0, 1, 0, 0, 0, 7), Date.UTC(2027, 0, 1, 0, 0, 0, 70), -1, -500, 0, 253_402_300_799_999, 253_402_300_800_000]) {
        assert.equal(isoNow(ms), new Date(ms).toISOString());
      }
    });

    it('caches the JSON of a who-part per object: another object with other values is written as it is', () => {
      const user = Object.freeze({ id: 'u9', name: 'carol', domainId: 'default' });
      const first = JSON.parse(auditLine({ ...record, user })) as AuditRecord;
      const again = JSON.parse(auditLine({ ...record, user: { ...user, name: 'dave' } })) as AuditRecord;
      assert.equal(first.user?.name, 'carol');
      assert.equal(again.user?.name, 'dave');
    });
  });

  it('destination off writes nothing', () => {
    const out = new LineCollector();
    const trail = createAuditTrail({ destination: 'off' }, out);
    trail.record(record);
    trail.flush();
    assert.deepEqual(out.lines, []);
  });
});
