import { Writable } from 'node:stream';
import type { AuditRecord, AuditTrail } from '../../src/observability/audit.js';

/** An audit trail that keeps its records, for assertions. */
export class MemoryAudit implements AuditTrail {
  readonly records: AuditRecord[] = [];
  record(entry: AuditRecord): void {
    this.records.push(entry);
  }
  reopen(): void {}
  flush(): void {}
  /** Records are written when an exchange ends, which may be just after the client saw the response. */
  async waitFor(predicate: (r: AuditRecord) => boolean, timeoutMs = 2000): Promise<AuditRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.records.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no audit record matched within ${timeoutMs} ms; have: ${JSON.stringify(this.records, null, 1)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A writable that keeps every line written to it (a pino destination for log assertions). */
export class LineCollector extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}
