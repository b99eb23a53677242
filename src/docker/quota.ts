import type { ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { ownedFilter } from './ownership.js';
import { PerKeySerial } from './per-key-serial.js';
import { refused } from './policy.js';
import { ProjectLease } from './project-lease.js';

/** What a project's quota counts, and how the engine lists the project's own. */
export type Counted = 'containers' | 'networks';
const LISTS: Readonly<Record<Counted, (project: string) => string>> = {
  containers: (project) => `/containers/json?all=1&filters=${ownedFilter(project)}`,
  networks: (project) => `/networks?filters=${ownedFilter(project)}`,
};

/**
 * `docker.limits.maxContainersPerProject` and `maxNetworksPerProject` (each network holds one of the engine's few
 * address pools, shared by every tenant): the project's own are counted and the create is made as one step per
 * project, held until the create's response closes: within this process by a queue per project, across replicas by
 * the project's lease in the engine (project-lease.ts). Parallel creates, through one replica or several, cannot all
 * count the same ones.
 */
export class ProjectQuota {
  private readonly serial = new PerKeySerial();

  constructor(
    private readonly engine: Upstream,
    private readonly max: Readonly<Partial<Record<Counted, number>>>,
    private readonly lease: ProjectLease = new ProjectLease(engine),
  ) {}

  /** Refuses a create at the limit; false when the client left while it waited its turn (nobody to create for). */
  async admit(identity: Identity, res: ServerResponse, counted: Counted): Promise<boolean> {
    const max = this.max[counted];
    if (max === undefined) return true;
    const project = identity.project.id;
    let closed = false;
    const releases: Array<() => unknown> = [];
    const releaseAll = (): void => {
      for (const release of releases.splice(0).reverse()) void Promise.resolve(release()).catch(() => undefined);
    };
    res.once('close', () => {
      closed = true;
      releaseAll();
    });
    try {
      // Its 'close' may have come before the listener above was added (the client left while its body was checked):
      // then only res.closed tells.
      const gone = (): boolean => closed || res.closed;
      releases.push(await this.serial.acquire(project));
      if (!gone()) releases.push(await this.lease.acquire(project));
      // Its 'close' came while it waited, or before it asked: the turn is given back here.
      if (gone()) {
        releaseAll();
        return false;
      }
      const answer = await engineJson(this.engine, 'GET', LISTS[counted](project));
      if (Array.isArray(answer.body) && answer.body.length >= max) {
        throw refused(`project ${identity.project.name} already has ${answer.body.length} ${counted}, the most allowed is ${max}; remove some first`);
      }
      return true;
    } catch (err) {
      releaseAll();
      throw err;
    }
  }
}
