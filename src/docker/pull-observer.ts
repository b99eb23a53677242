import { StringDecoder } from 'node:string_decoder';
import type { Identity } from '../auth/identity.js';
import type { ResponseObserver } from '../proxy/forward.js';
import type { ImageAccess } from './images.js';
import { familiarName, isDigest, parseImageRef } from '../config/image-reference.js';

/**
 * Observes a pull's answer (POST /images/create?fromImage=...), relayed as it streams, and records the pulled image as
 * the project's once the engine says it succeeded. The engine answers a pull with JSON lines: progress, then
 * `{"status":"Digest: sha256:..."}` per image, or an `{"error": ...}` line at any point (the status is 200 by then).
 * Only a complete answer with no error line counts; a client that leaves, or an engine that breaks off, records
 * nothing. Each digest is resolved to its image id by `repository@digest`, never by the tag, which another project's
 * pull may move meanwhile.
 */

/** Progress lines are a few hundred bytes; a longer one is not read (and the pull is not recorded). */
const MAX_LINE_BYTES = 64 * 1024;
/** `docker pull -a` reports one digest per tag; a pull reporting more is not recorded. */
const MAX_DIGESTS = 1000;

/** The engine's error line: the docker CLI prints its message and exits non-zero. */
export function errorLine(message: string): Buffer {
  return Buffer.from(`${JSON.stringify({ errorDetail: { message }, error: message })}\r\n`);
}

/** What the progress lines said. */
export class PullProgress {
  readonly digests = new Set<string>();
  failed = false;
  /** A line too long to read, or too many digests: the outcome is unknown. */
  unreadable = false;
  private carry = '';
  /** A character split between chunks is decoded whole. */
  private readonly decoder = new StringDecoder('utf8');

  data(chunk: Buffer): void {
    if (this.unreadable) return;
    const lines = (this.carry + this.decoder.write(chunk)).split('\n');
    this.carry = lines.pop() ?? '';
    if (Buffer.byteLength(this.carry) > MAX_LINE_BYTES) this.unreadable = true;
    for (const line of lines) this.line(line.trim());
  }

  /** The last line, when the answer ended without a newline. */
  end(): void {
    this.carry += this.decoder.end();
    if (!this.unreadable && this.carry.trim() !== '') this.line(this.carry.trim());
    this.carry = '';
  }

  private line(text: string): void {
    if (text === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.unreadable = true;
      return;
    }
    if (parsed === null || typeof parsed !== 'object') return;
    const { error, errorDetail, status } = parsed as { error?: unknown; errorDetail?: unknown; status?: unknown };
    if (error !== undefined || errorDetail !== undefined) this.failed = true;
    if (typeof status === 'string' && status.startsWith('Digest: ')) {
      const digest = status.slice('Digest: '.length).trim();
      if (isDigest(digest)) this.digests.add(digest);
      if (this.digests.size > MAX_DIGESTS) this.unreadable = true;
    }
  }
}

/** What a pull names: the repository (full form), and whether it is by digest. */
export interface PullTarget {
  readonly repository: string;
  readonly byDigest: boolean;
}

/** The pull's target from its query (`fromImage`, `tag`), as the engine combines them; undefined when unreadable. */
export function pullTarget(query: URLSearchParams): PullTarget | undefined {
  const ref = parseImageRef(query.get('fromImage') ?? '');
  if (ref?.kind !== 'name') return undefined;
  const tag = query.get('tag') ?? '';
  return { repository: ref.repository, byDigest: ref.digest !== undefined || isDigest(tag) };
}

/**
 * The observer of one pull by `identity`. A pull by tag asks the registry for the tag's manifest with the caller's
 * credentials whether or not the engine has the image: its success is the proof. A pull by digest is not: the engine
 * answers it from its own store when it has the image, without asking the registry, so it counts only when the
 * project may already use that image (then there is nothing to record), and otherwise says to pull by tag.
 */
export function pullObserver(images: ImageAccess, identity: Identity, query: URLSearchParams): ResponseObserver {
  const progress = new PullProgress();
  const target = pullTarget(query);
  const project = identity.project;
  let status = 0;
  const cannotRecord = (why: string): Buffer =>
    errorLine(`the image was pulled, but ${why}, so project ${project.name} cannot use it yet through this gateway`);
  return {
    head: (s) => (status = s),
    data: (chunk) => progress.data(chunk),
    async complete() {
      progress.end();
      // The engine's own error line (or status) has told the client already.
      if (status !== 200 || progress.failed) return undefined;
      if (progress.unreadable) return cannotRecord('the gateway could not read the engine\'s progress lines');
      if (target === undefined) return cannotRecord(`the gateway cannot read the image reference ${JSON.stringify(query.get('fromImage'))}`);
      if (progress.digests.size === 0) return cannotRecord('the engine did not report the digest of what it pulled');
      try {
        for (const digest of progress.digests) {
          const ref = `${target.repository}@${digest}`;
          const { image, seen } = await images.check(ref, project.id);
          if (!target.byDigest) await images.records.record({ project: project.id, repository: target.repository, image: image.id });
          else if (!seen.usable) {
            return cannotRecord(
              `a pull by digest does not show that project ${project.name} may pull it (the engine serves a digest it already has without asking the registry): pull it once by tag (docker pull ${familiarName(target.repository)}:<tag>); the digest works from then on`,
            );
          }
        }
        return undefined;
      } catch (err) {
        return cannotRecord(`the gateway could not record the pull (${err instanceof Error ? err.message : String(err)}); pull it again`);
      }
    },
  };
}
