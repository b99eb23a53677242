import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { keystoneDown, type KeystoneClient } from './keystone-client.js';

/** The part of GET /v3/projects/{id} the gateway reads. */
const projectBody = z.object({ project: z.object({ id: z.string(), tags: z.array(z.string()).optional() }) });

export interface ProjectTagsOptions {
  /** How long a project's tags are trusted once read: at most the token cache's lifetime. */
  readonly ttlMs: number;
  /** How long a refused read (no tags, so no tagged cluster) is kept, so that a refusing policy costs one call per project now and then. */
  readonly refusedTtlMs: number;
  readonly maxEntries: number;
  readonly now?: () => number;
}

/** A project's tags, and until when they may be trusted. */
export interface ReadTags {
  readonly tags: readonly string[];
  readonly freshUntil: number;
}

/**
 * Keystone project tags, which open clusters to projects (k8s.clusters[].projectTags): read with the token of a
 * caller of that project, when the token is validated, and cached by project id (one call per project and TTL, not
 * per token). Keystone unavailable: the validation fails as unavailable (503), nothing is cached. Keystone refusing
 * the read: no tags (a tagged cluster refuses the caller, fail closed), and the operator is told in the log.
 */
export class ProjectTags {
  private readonly cache: LRUCache<string, ReadTags>;
  private readonly pending = new Map<string, Promise<ReadTags>>();
  private readonly now: () => number;

  constructor(
    private readonly keystone: KeystoneClient,
    private readonly options: ProjectTagsOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? Date.now;
    this.cache = new LRUCache({ max: options.maxEntries });
  }

  /**
   * The tags of `projectId`, the project `token` is scoped to. `again`: read at Keystone even when cached (a token
   * validated again, so that a tag removed ends what it opened as a removed role does).
   */
  read(token: string, projectId: string, again = false): Promise<ReadTags> {
    const hit = this.cache.get(projectId);
    if (!again && hit !== undefined && hit.freshUntil > this.now()) return Promise.resolve(hit);
    let p = this.pending.get(projectId);
    if (p === undefined) {
      p = this.fetch(token, projectId)
        .then((read) => {
          this.cache.set(projectId, read);
          return read;
        })
        .finally(() => this.pending.delete(projectId));
      this.pending.set(projectId, p);
    }
    return p;
  }

  private async fetch(token: string, projectId: string): Promise<ReadTags> {
    const res = await this.keystone.project(token, projectId);
    if (res.status >= 500 || res.status === 429) throw keystoneDown(`Keystone answered HTTP ${res.status} to reading a project's tags`);
    if (res.status !== 200) {
      this.logger.error(
        { keystoneStatus: res.status, project: projectId },
        "Keystone refused reading a project's tags with its member's token (GET /v3/projects/{id}): clusters with projectTags refuse this project; Keystone's policy identity:get_project must let a project's members read it (its default does)",
      );
      return { tags: [], freshUntil: this.now() + this.options.refusedTtlMs };
    }
    const parsed = projectBody.safeParse(res.body);
    if (!parsed.success || parsed.data.project.id !== projectId) throw keystoneDown('Keystone returned a project body the gateway cannot read');
    return { tags: Object.freeze([...(parsed.data.project.tags ?? [])]), freshUntil: this.now() + this.options.ttlMs };
  }
}
