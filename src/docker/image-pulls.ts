import { createHash } from 'node:crypto';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { field, isObject, type Json } from './json-body.js';
import { GATEWAY_VOLUME_PREFIX, LABEL_PREFIX, engineFailed } from './ownership.js';

/**
 * Which project pulled which image, kept in the engine so that every replica, and a restarted gateway, sees the same:
 * one empty volume per (project, repository, image id), named from a hash of the three and labelled with them
 * (docs/security.md "Images" says why a volume and not a tag). Its labels are in the gateway's prefix, which tenants
 * cannot set, and it carries no owner label, so no tenant lists, mounts, inspects or removes it.
 */

export const PULLED_PROJECT_LABEL = `${LABEL_PREFIX}pulled.project-id`;
export const PULLED_REPOSITORY_LABEL = `${LABEL_PREFIX}pulled.repository`;
export const PULLED_IMAGE_LABEL = `${LABEL_PREFIX}pulled.image-id`;

/** One successful pull: `project` pulled `image` (an engine image id) from `repository` (in full form). */
export interface PullRecord {
  readonly project: string;
  readonly repository: string;
  readonly image: string;
}

/** The record's volume name: the same for every replica that records the same pull, so the engine keeps one. */
export function recordName(record: PullRecord): string {
  const hash = createHash('sha256').update(`${record.project}\n${record.repository}\n${record.image}`).digest('hex');
  return `${GATEWAY_VOLUME_PREFIX}pull-${hash.slice(0, 40)}`;
}

function labelsOf(record: PullRecord): Record<string, string> {
  return { [PULLED_PROJECT_LABEL]: record.project, [PULLED_REPOSITORY_LABEL]: record.repository, [PULLED_IMAGE_LABEL]: record.image };
}

function recordOf(volume: Json): PullRecord | undefined {
  const labels = field(volume, 'Labels');
  if (!isObject(labels ?? null)) return undefined;
  const get = (key: string): string | undefined => {
    const v = (labels as Record<string, Json>)[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const project = get(PULLED_PROJECT_LABEL);
  const repository = get(PULLED_REPOSITORY_LABEL);
  const image = get(PULLED_IMAGE_LABEL);
  return project !== undefined && repository !== undefined && image !== undefined ? { project, repository, image } : undefined;
}

export class PullRecords {
  constructor(private readonly engine: Upstream) {}

  /**
   * Writes the record. Idempotent: the engine answers a create for an existing name with the existing volume, so two
   * replicas recording the same pull at once both succeed and leave one volume. An answer with other labels is a
   * volume the gateway did not make (tenants cannot take the name): refused, nothing is assumed.
   */
  async record(record: PullRecord): Promise<void> {
    const name = recordName(record);
    const labels = labelsOf(record);
    const answer = await engineJson(this.engine, 'POST', '/volumes/create', { Name: name, Labels: labels });
    if (answer.status !== 201 && answer.status !== 200) {
      throw engineFailed(answer.status, `the Docker engine answered ${answer.status} while recording the pull of ${record.repository} (volume ${name})`);
    }
    const kept = recordOf(answer.body as Json);
    if (kept === undefined || kept.project !== record.project || kept.repository !== record.repository || kept.image !== record.image) {
      throw engineFailed(502, `volume ${name} on the Docker engine is not the gateway's record of this pull: remove it (docker volume rm ${name}) and pull again`);
    }
  }

  /** Every project's pulls of one image. */
  forImage(image: string): Promise<PullRecord[]> {
    return this.list([`${PULLED_IMAGE_LABEL}=${image}`]);
  }

  /** One project's pulls. */
  forProject(project: string): Promise<PullRecord[]> {
    return this.list([`${PULLED_PROJECT_LABEL}=${project}`]);
  }

  /** Every record (for an image list, which needs whose names each image carries). */
  all(): Promise<PullRecord[]> {
    return this.list([PULLED_IMAGE_LABEL]);
  }

  private async list(labels: readonly string[]): Promise<PullRecord[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: labels }));
    const answer = await engineJson(this.engine, 'GET', `/volumes?filters=${filters}`);
    const volumes = field(answer.body as Json, 'Volumes');
    if (answer.status !== 200 || !(Array.isArray(volumes) || volumes === null)) {
      throw engineFailed(answer.status, `the Docker engine answered ${answer.status} while reading which images were pulled`);
    }
    return (volumes ?? []).map(recordOf).filter((r): r is PullRecord => r !== undefined);
  }
}
