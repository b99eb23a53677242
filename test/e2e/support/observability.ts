import { existsSync, readFileSync } from 'node:fs';
import type { AuditRecord } from '../../../src/observability/audit.js';
import { sample } from '../../helpers/prometheus-text.js';
import { sharedGateway } from './gateway-process.js';

/** The e2e gateway's audit records whose `time` is not before `since` (records are written just after each answer). */
export async function auditRecordMatching(since: Date, predicate: (r: AuditRecord) => boolean, timeoutMs = 5000): Promise<AuditRecord> {
  const file = sharedGateway().auditFile;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as AuditRecord & { time: string; type: string })
          .filter((r) => new Date(r.time) >= since)
      : [];
    const found = records.find(predicate);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no audit record matched in ${file}; records since ${since.toISOString()}: ${records.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One sample of the e2e gateway's /metrics, 0 when the series does not exist. */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(sharedGateway().metricsUrl);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return sample(await res.text(), name, labels);
}
