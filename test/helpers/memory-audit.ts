import { Writable } from 'node:stream';
import type { AuditRecord, AuditTrail } from '../../src/observability/audit.js';
import { Changes } from './changes.js';

/** An audit trail that keeps its records, for assertions. */
export class MemoryAudit implements AuditTrail {
  readonly records: AuditRecord[] = [];
  private readonly changes = new Changes();
  record(entry: AuditRecord): void {
    this.records.push(entry);
    this.changes.notify();
  }
  reopen(): void {}
  flush(): void {}
  /**
   * Records are written when an exchange ends, which may be just after the client saw the response; the exchange's
   * metrics are counted at the same moment, so a test waits for the record before it reads them.
   */
  async waitFor(predicate: (r: AuditRecord) => boolean): Promise<AuditRecord> {
    await this.changes.until(() => this.records.some(predicate));
    return this.records.find(predicate) as AuditRecord;
  }
}

/** A writable that keeps every line written to it (a pino destination for log assertions); `changes` tells of each. */
export class LineCollector extends Writable {
  readonly lines: string[] = [];
  readonly changes = new Changes();
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    this.changes.notify();
    done();
  }

  /** Waits until `count` lines (one unless told) hold `text`. */
  async until(text: string, count = 1): Promise<void> {
    await this.changes.until(() => this.lines.filter((l) => l.includes(text)).length >= count);
  }
  get text(): string {
    return this.lines.join('\n');
  }
}
