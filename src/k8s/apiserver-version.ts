import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { ApiserverVersion } from './subpath.js';

/** How often the version is read again: an upgraded (or downgraded) cluster is noticed within this. */
export const VERSION_REREAD_MS = 10 * 60_000;
/** A read that has not answered after this long counts as failed (the next one is scheduled as usual). */
const READ_TIMEOUT_MS = 10_000;

/** GET /version with the gateway's own credentials (every authenticated client may read it: system:public-info-viewer). */
export function apiserverVersionReader(kc: KubeConfig): () => Promise<string> {
  const api = kc.makeApiClient(VersionApi);
  return async () => (await api.getCode()).gitVersion;
}

export interface VersionWatchOptions {
  readonly rereadMs?: number;
  readonly timeoutMs?: number;
  /** setTimeout by default; tests drive the schedule themselves. */
  readonly schedule?: (run: () => void, ms: number) => { cancel(): void };
}

const realSchedule = (run: () => void, ms: number): { cancel(): void } => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return { cancel: () => clearTimeout(timer) };
};

/**
 * The apiserver's version as last read: unknown until the first read succeeds (the subPath rule then fails closed).
 * A failed re-read keeps the version read before: a cluster does not change version because one call failed.
 */
export class ApiserverVersionWatch {
  private state: ApiserverVersion = { known: false, why: 'not read yet' };
  private next: { cancel(): void } | undefined;
  private stopped = false;
  private readonly rereadMs: number;
  private readonly timeoutMs: number;
  private readonly schedule: NonNullable<VersionWatchOptions['schedule']>;

  constructor(
    private readonly read: () => Promise<string>,
    private readonly logger: Logger,
    options: VersionWatchOptions = {},
  ) {
    this.rereadMs = options.rereadMs ?? VERSION_REREAD_MS;
    this.timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
    this.schedule = options.schedule ?? realSchedule;
  }

  current(): ApiserverVersion {
    return this.state;
  }

  /** Reads now, then every rereadMs until stop(). */
  start(): void {
    void this.refresh().finally(() => this.plan());
  }

  stop(): void {
    this.stopped = true;
    this.next?.cancel();
  }

  /** One read; never throws. */
  async refresh(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      // A read under way must not keep a stopping process alive.
      timer.unref();
    });
    try {
      const gitVersion = await Promise.race([this.read(), late]);
      if (!this.state.known || this.state.gitVersion !== gitVersion) this.logger.info({ gitVersion }, 'kubernetes apiserver version read');
      this.state = { known: true, gitVersion };
    } catch (err) {
      const why = `GET /version failed: ${(err as Error).message}`;
      this.logger.warn({ err: (err as Error).message, kept: this.state.known ? this.state.gitVersion : undefined }, 'could not read the kubernetes apiserver version');
      if (!this.state.known) this.state = { known: false, why };
    } finally {
      clearTimeout(timer);
    }
  }

  private plan(): void {
    if (this.stopped) return;
    this.next = this.schedule(() => void this.refresh().finally(() => this.plan()), this.rereadMs);
  }
}
