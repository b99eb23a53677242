import { randomUUID } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { field, isObject, type Json } from './json-body.js';
import { LABEL_PREFIX, GATEWAY_VOLUME_PREFIX } from './ownership.js';

const HOLDER_LABEL = `${LABEL_PREFIX}lease-holder`;
const UNTIL_LABEL = `${LABEL_PREFIX}lease-until`;

export interface LeaseOptions {
  /** How long a lease is good for: a replica that died holding one blocks its project no longer than this. */
  readonly holdMs?: number;
  /** How long a request waits for the lease before it is told to try again. */
  readonly waitMs?: number;
  readonly now?: () => number;
  /** Waits between tries (injected in tests). */
  readonly pause?: (ms: number) => Promise<void>;
}

const realPause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * A per-project lock every replica sees, kept in the engine itself: a volume named for the project, created with the
 * holder's id in its labels. Volume names are unique and a create of an existing name answers the existing volume, so
 * exactly one replica finds its own id in the answer; the others wait and try again. A lease past its time (its holder
 * died) is removed and taken. The container quota counts and creates under it, so replicas cannot overshoot a limit
 * together (invariants.md 32); a project's default network is made under it, so replicas make one.
 */
export class ProjectLease {
  private readonly holdMs: number;
  private readonly waitMs: number;
  private readonly now: () => number;
  private readonly pause: (ms: number) => Promise<void>;

  constructor(
    private readonly engine: Upstream,
    options: LeaseOptions = {},
  ) {
    this.holdMs = options.holdMs ?? 30_000;
    this.waitMs = options.waitMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.pause = options.pause ?? realPause;
  }

  /** Resolves with the release once this replica holds the project's lease. */
  async acquire(projectId: string): Promise<() => Promise<void>> {
    const name = `${GATEWAY_VOLUME_PREFIX}lease-${projectId}`;
    const holder = randomUUID();
    const giveUpAt = this.now() + this.waitMs;
    for (let attempt = 0; ; attempt += 1) {
      const until = this.now() + this.holdMs;
      const answer = await engineJson(this.engine, 'POST', '/volumes/create', { Name: name, Labels: { [HOLDER_LABEL]: holder, [UNTIL_LABEL]: String(until) } });
      if (answer.status !== 201) throw new GatewayError('engine_failed', `the Docker engine answered ${answer.status} while taking the project's lease`, { status: 502 });
      const labels = field(answer.body as Json, 'Labels');
      const held = isObject(labels ?? null) ? (labels as Record<string, Json>) : {};
      if (held[HOLDER_LABEL] === holder) return () => this.release(name, holder);
      if (Number(held[UNTIL_LABEL] ?? 0) < this.now()) {
        // Its holder died (or its clock is far behind ours): remove it and try again at once.
        await engineJson(this.engine, 'DELETE', `/volumes/${encodeURIComponent(name)}`);
        continue;
      }
      if (this.now() >= giveUpAt) {
        throw new GatewayError('rate_limited', 'another create of this project (a container or a network) is still under way; retry shortly', { headers: { 'Retry-After': '1' } });
      }
      await this.pause(Math.min(200, 10 * 2 ** Math.min(attempt, 4)));
    }
  }

  private async release(name: string, holder: string): Promise<void> {
    const current = await engineJson(this.engine, 'GET', `/volumes/${encodeURIComponent(name)}`);
    const labels = field(current.body as Json, 'Labels');
    if (current.status === 200 && isObject(labels ?? null) && (labels as Record<string, Json>)[HOLDER_LABEL] === holder) {
      await engineJson(this.engine, 'DELETE', `/volumes/${encodeURIComponent(name)}`);
    }
  }
}
