import type { ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { ownedFilter } from './ownership.js';
import { PerKeySerial } from './per-key-serial.js';
import { refused } from './policy.js';

/**
 * `docker.limits.maxContainersPerProject`: the project's containers are counted and the create is made as one step per
 * project (held until the create's response closes), so parallel creates cannot all count the same containers.
 */
export class ContainerQuota {
  private readonly serial = new PerKeySerial();

  constructor(
    private readonly engine: Upstream,
    private readonly max: number | undefined,
  ) {}

  /** Refuses a create at the limit; false when the client left while it waited its turn (nobody to create for). */
  async admit(identity: Identity, res: ServerResponse): Promise<boolean> {
    const { max } = this;
    if (max === undefined) return true;
    const held = this.serial.acquire(identity.project.id);
    let release: (() => void) | undefined;
    let closed = false;
    res.once('close', () => {
      closed = true;
      release?.();
    });
    release = await held;
    // Its 'close' has come already: the turn is given back here.
    if (closed) {
      release();
      return false;
    }
    try {
      const answer = await engineJson(this.engine, 'GET', `/containers/json?all=1&filters=${ownedFilter(identity.project.id)}`);
      if (Array.isArray(answer.body) && answer.body.length >= max) {
        throw refused(`project ${identity.project.name} already has ${answer.body.length} containers, the most allowed is ${max}; remove some first`);
      }
      return true;
    } catch (err) {
      release();
      throw err;
    }
  }
}
