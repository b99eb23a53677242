/**
 * Container image references as the runtimes read them (the docker reference grammar of
 * github.com/distribution/reference, `ParseAnyReference`, which dockerd, dockershim, containerd and CRI-O all use):
 * an image id (`sha256:<64 hex>`, or 64 hex digits), or a name with an optional tag and digest. Names are compared in
 * their full form: `busybox` is `docker.io/library/busybox`, `local/busybox` is `docker.io/local/busybox`. Used where
 * the configuration names images (sharedImages) and by both COEs. Pure.
 */

const DEFAULT_DOMAIN = 'docker.io';
const OFFICIAL_PREFIX = 'library/';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;
const BARE_ID = /^[0-9a-f]{64}$/;
/** The grammar's limit on a name's length (domain and path). */
const MAX_NAME = 255;

export type ImageRef =
  | { readonly kind: 'id'; readonly id: string }
  | { readonly kind: 'name'; readonly repository: string; readonly tag: string | undefined; readonly digest: string | undefined };

/** The reference parsed, with the repository in full form; undefined when a runtime would refuse it as invalid. */
export function parseImageRef(ref: string): ImageRef | undefined {
  if (IMAGE_ID.test(ref)) return { kind: 'id', id: ref };
  if (BARE_ID.test(ref)) return { kind: 'id', id: `sha256:${ref}` };
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const repository = fullName(rest);
  return repository === undefined ? undefined : { kind: 'name', repository, tag, digest };
}

/** `busybox` -> `docker.io/library/busybox`, `reg:5000/a/b` as it is; undefined when it is not a valid name. */
function fullName(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_NAME) return undefined;
  const slash = name.indexOf('/');
  let domain = DEFAULT_DOMAIN;
  let path = name;
  if (slash !== -1) {
    const first = name.slice(0, slash);
    // The engine's splitDockerDomain: a first part with a dot or a port, `localhost`, or capitals names a registry.
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first === 'index.docker.io' ? DEFAULT_DOMAIN : first;
      path = name.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) return undefined;
  if (!path.split('/').every((c) => PATH_COMPONENT.test(c))) return undefined;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  return `${domain}/${path}`;
}

/** A name reference as a runtime pulls it: `name@digest` when a digest is given (the tag is then ignored), else `name:tag`. */
export interface ImageReference {
  /** `docker.io/library/busybox`. */
  readonly name: string;
  /** Absent when the reference has a digest and no tag; `latest` when it has neither. */
  readonly tag?: string;
  readonly digest?: string;
  readonly canonical: string;
}

/** A name reference in its full form (image ids are not names: undefined), or undefined when no runtime accepts it. */
export function parseImageReference(text: string): ImageReference | undefined {
  const parsed = parseImageRef(text);
  if (parsed === undefined || parsed.kind === 'id') return undefined;
  const name = parsed.repository;
  if (parsed.digest !== undefined) return { name, ...(parsed.tag !== undefined ? { tag: parsed.tag } : {}), digest: parsed.digest, canonical: `${name}@${parsed.digest}` };
  const tag = parsed.tag ?? 'latest';
  return { name, tag, canonical: `${name}:${tag}` };
}

/** The short form the engine shows (`docker.io/library/busybox` -> `busybox`). */
export function familiarName(repository: string): string {
  if (!repository.startsWith(`${DEFAULT_DOMAIN}/`)) return repository;
  const path = repository.slice(DEFAULT_DOMAIN.length + 1);
  return path.startsWith(OFFICIAL_PREFIX) && !path.slice(OFFICIAL_PREFIX.length).includes('/') ? path.slice(OFFICIAL_PREFIX.length) : path;
}

/** A reference as the engine's "No such image" names it: ids as they are, names in short form with `:latest` added. */
export function familiarRef(ref: string): string {
  const parsed = parseImageRef(ref);
  if (parsed === undefined) return ref;
  if (parsed.kind === 'id') return parsed.id;
  const tag = parsed.tag ?? (parsed.digest === undefined ? 'latest' : undefined);
  return `${familiarName(parsed.repository)}${tag !== undefined ? `:${tag}` : ''}${parsed.digest !== undefined ? `@${parsed.digest}` : ''}`;
}

/** The repository of an engine's RepoTags or RepoDigests entry (`busybox:latest`, `reg/a@sha256:...`), in full form. */
export function repositoryOf(entry: string): string | undefined {
  const parsed = parseImageRef(entry);
  return parsed?.kind === 'name' ? parsed.repository : undefined;
}

/** Whether the text is a digest (`sha256:...`): an image named by its content, or a pull's `tag` that is one. */
export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

/** An entry of a shared-images list: a reference any runtime accepts, or a digest alone. */
export function isImageReferenceOrDigest(text: string): boolean {
  return isDigest(text) || parseImageReference(text) !== undefined;
}
