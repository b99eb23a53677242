import { GatewayError } from '../errors.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson, type EngineAnswer } from './engine.js';
import { PullRecords, type PullRecord } from './image-pulls.js';
import { familiarRef, parseImageRef, repositoryOf } from '../config/image-reference.js';
import { bodyError, field, isObject, parseBody, type Json, type JsonObject } from './json-body.js';
import { engineFailed } from './ownership.js';

/**
 * Which images a project may use (invariants.md 31): the engine caches images for every tenant, and a private image
 * one project pulled with its registry credentials would otherwise run for any project that names it. A project may
 * use an image it pulled through the gateway (image-pulls.ts keeps that in the engine) or one the operator shares
 * (`docker.sharedImages`); every other image looks exactly missing, so the docker CLI pulls it with the caller's own
 * credentials and the registry decides. What a project sees of a usable image's names is redacted the same way.
 */

/** `docker.sharedImages`, parsed: image ids, pinned digests (`repo@sha256:...`), and tags (`repo:tag`), in full form. */
export interface SharedImages {
  readonly ids: ReadonlySet<string>;
  readonly digests: ReadonlySet<string>;
  readonly tags: ReadonlySet<string>;
}

/** Parses `docker.sharedImages` at start; an entry the engine could not read is a configuration error naming it. */
export function parseSharedImages(entries: readonly string[]): SharedImages {
  const ids = new Set<string>();
  const digests = new Set<string>();
  const tags = new Set<string>();
  entries.forEach((entry, i) => {
    const ref = parseImageRef(entry);
    if (ref === undefined) throw new GatewayError('config_invalid', `docker.sharedImages[${i}]: ${JSON.stringify(entry)} is not an image reference (name[:tag], name@sha256:<digest>) or an image id (sha256:<64 hex>)`);
    if (ref.kind === 'id') ids.add(ref.id);
    else if (ref.digest !== undefined) digests.add(`${ref.repository}@${ref.digest}`);
    else tags.add(`${ref.repository}:${ref.tag ?? 'latest'}`);
  });
  return { ids, digests, tags };
}

/** The parts of the engine's image (inspect or list entry) the rules read. */
export interface EngineImage {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
}

/** An engine's `<none>:<none>` placeholder names nothing: it is kept as it is. */
const PLACEHOLDER = /^<none>[:@]<none>$/;

/** A RepoTags or RepoDigests entry in full form (`busybox:latest` -> `docker.io/library/busybox:latest`). */
function fullEntry(entry: string): string | undefined {
  const ref = parseImageRef(entry);
  if (ref?.kind !== 'name') return undefined;
  return ref.digest !== undefined ? `${ref.repository}@${ref.digest}` : `${ref.repository}:${ref.tag ?? 'latest'}`;
}

export interface Visibility {
  /** Whether the project may use and see the image. */
  readonly usable: boolean;
  /** Whether the project may see this RepoTags or RepoDigests entry of it. */
  shows(entry: string): boolean;
}

/**
 * What `project` may do with `image`, given every project's pull records of that image:
 * - usable when the project pulled it (from any repository), when its id or one of its digests is shared, or when
 *   one of its tags is shared and no project pulled it from that tag's repository (an operator's preloaded image;
 *   a tag a tenant's pull moved there is a tenant's image, and shares nothing);
 * - a name (tag or digest) is shown when the project pulled the image from that repository, or when no project did
 *   (an operator's name): other projects' registries and repositories are theirs to know.
 */
export function visibility(image: EngineImage, project: string, records: readonly PullRecord[], shared: SharedImages): Visibility {
  const mine = records.filter((r) => r.image === image.id);
  const pulledFrom = new Set(mine.map((r) => r.repository));
  const ownRepositories = new Set(mine.filter((r) => r.project === project).map((r) => r.repository));
  const operatorName = (entry: string): boolean => {
    const repository = repositoryOf(entry);
    return repository !== undefined && !pulledFrom.has(repository);
  };
  const usable =
    ownRepositories.size > 0 ||
    shared.ids.has(image.id) ||
    image.repoDigests.some((d) => shared.digests.has(fullEntry(d) ?? '')) ||
    image.repoTags.some((t) => shared.tags.has(fullEntry(t) ?? '') && operatorName(t));
  return {
    usable,
    shows: (entry) => {
      if (PLACEHOLDER.test(entry)) return true;
      const repository = repositoryOf(entry);
      return repository !== undefined && (ownRepositories.has(repository) || !pulledFrom.has(repository));
    },
  };
}

function strings(v: Json | undefined): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

function engineImage(body: Json | undefined): EngineImage | undefined {
  const id = field(body, 'Id');
  if (typeof id !== 'string' || id === '') return undefined;
  return { id, repoTags: strings(field(body, 'RepoTags')), repoDigests: strings(field(body, 'RepoDigests')) };
}

/** The entry's RepoTags and RepoDigests narrowed to what the project may see (null, as the engine sends, kept). */
function redact(entry: JsonObject, seen: Visibility): JsonObject {
  for (const key of ['RepoTags', 'RepoDigests']) {
    const names = entry[key];
    if (Array.isArray(names)) entry[key] = names.filter((n) => typeof n === 'string' && seen.shows(n));
  }
  return entry;
}

/** The engine's message for a create naming an image it does not have (`No such image: busybox:latest`). */
function noSuchImage(ref: string): GatewayError {
  return new GatewayError('not_found', `No such image: ${familiarRef(ref)}`);
}

/** The engine's message for an inspect of an image it does not have. */
function noSuchImageInspect(ref: string): GatewayError {
  return new GatewayError('not_found', `no such image: ${ref}: No such image: ${familiarRef(ref)}`);
}

/** The engine's answer to an inspect, when it is a refusal: relayed as the engine said it (its 404, its 400 for bad input). */
function engineRefusal(answer: EngineAnswer, ref: string): GatewayError {
  const message = field(answer.body as Json, 'message');
  const text = typeof message === 'string' ? message : `the Docker engine answered ${answer.status} for image ${ref}`;
  if (answer.status === 404) return new GatewayError('not_found', text);
  if (answer.status === 400) return new GatewayError('body_invalid', text);
  return engineFailed(answer.status, text);
}

/** An image path of the engine (`/images/<name>/json`): names keep their slashes, each segment encoded. */
function imagePath(ref: string): string {
  return `/images/${ref.split('/').map(encodeURIComponent).join('/')}/json`;
}

/** A checked image: its engine id, and what the caller may see of it. */
interface CheckedImage {
  readonly body: JsonObject;
  readonly image: EngineImage;
  readonly seen: Visibility;
}

export class ImageAccess {
  readonly records: PullRecords;

  constructor(
    private readonly engine: Upstream,
    private readonly shared: SharedImages,
  ) {
    this.records = new PullRecords(engine);
  }

  /**
   * The engine's image for `ref` and what `project` may do with it; the engine's own refusal when it has no such
   * image or cannot read the reference.
   */
  async check(ref: string, project: string, path = imagePath(ref)): Promise<CheckedImage> {
    const answer = await engineJson(this.engine, 'GET', path);
    if (answer.status !== 200) throw engineRefusal(answer, ref);
    const image = engineImage(answer.body as Json);
    if (image === undefined || !isObject(answer.body as Json)) throw engineFailed(502, `the Docker engine's answer for image ${ref} has no image id`);
    const seen = visibility(image, project, await this.records.forImage(image.id), this.shared);
    return { body: answer.body as JsonObject, image, seen };
  }

  /** GET /images/{name}/json: the engine's answer when the project may use the image, redacted; else the engine's miss. */
  async inspect(path: string, ref: string, project: string): Promise<EngineAnswer> {
    const { body, seen } = await this.check(ref, project, path);
    if (!seen.usable) throw noSuchImageInspect(ref);
    return { status: 200, body: redact(body, seen) };
  }

  /** GET /images/json: the images the project may use, redacted. The client's own query (filters, all) goes to the engine. */
  async list(path: string, project: string): Promise<EngineAnswer> {
    const [answer, records] = await Promise.all([engineJson(this.engine, 'GET', path), this.records.all()]);
    if (answer.status !== 200 || !Array.isArray(answer.body)) return answer;
    const byImage = new Map<string, PullRecord[]>();
    for (const r of records) byImage.set(r.image, [...(byImage.get(r.image) ?? []), r]);
    const visible: Json[] = [];
    for (const entry of answer.body as Json[]) {
      const image = engineImage(entry);
      if (image === undefined || !isObject(entry)) continue;
      const seen = visibility(image, project, byImage.get(image.id) ?? [], this.shared);
      if (seen.usable) visible.push(redact(entry, seen));
    }
    return { status: 200, body: visible };
  }

  /** Whether the project may use the image with this engine id (false when the engine no longer has it). */
  private async usableId(id: string, project: string): Promise<boolean> {
    return this.check(id, project).then(
      (c) => c.seen.usable,
      () => false,
    );
  }

  /** How many images the project may use (`docker info`). */
  async count(project: string): Promise<number> {
    const listed = await this.list('/images/json', project);
    return Array.isArray(listed.body) ? listed.body.length : 0;
  }

  /**
   * The image a container create names (the checked body, as it goes to the engine), when the project may use it: its
   * engine id. Otherwise the engine's own "No such image", so the docker CLI pulls it with the caller's credentials.
   */
  async forCreate(body: Buffer, project: string): Promise<{ readonly ref: string; readonly id: string }> {
    const ref = field(parseBody(body), 'Image');
    if (typeof ref !== 'string' || ref === '') throw bodyError('a container needs an image: name one (docker create IMAGE, docker run IMAGE)');
    const checked = await this.check(ref, project).catch((err: unknown) => {
      // The create's own words for a missing image, not the inspect's.
      throw err instanceof GatewayError && err.code === 'not_found' ? noSuchImage(ref) : err;
    });
    if (!checked.seen.usable) throw noSuchImage(ref);
    return { ref, id: checked.image.id };
  }

  /**
   * Creates the container and checks which image the engine made it from: a tag another project's pull moved between
   * the check and the create would otherwise give the project an image it never pulled. Such a container is removed
   * before anyone is told its id, and the answer is the engine's miss.
   */
  async create(path: string, body: Buffer, image: { readonly ref: string; readonly id: string }, project: string, timeoutMs: number): Promise<EngineAnswer> {
    const created = await engineJson(this.engine, 'POST', path, body, timeoutMs);
    const id = field(created.body as Json, 'Id');
    if (created.status !== 201 || typeof id !== 'string') return created;
    const made = await engineJson(this.engine, 'GET', `/containers/${encodeURIComponent(id)}/json`);
    const madeFrom = field(made.body as Json, 'Image');
    if (made.status === 200 && madeFrom === image.id) return created;
    if (made.status === 200 && typeof madeFrom === 'string' && (await this.usableId(madeFrom, project))) return created;
    await engineJson(this.engine, 'DELETE', `/containers/${encodeURIComponent(id)}?force=1`);
    throw noSuchImage(image.ref);
  }
}
