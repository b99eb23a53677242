/**
 * Container image references as the container runtimes read them (the docker reference grammar of
 * github.com/distribution/reference, which dockershim, containerd and CRI-O all use): `busybox` is
 * `docker.io/library/busybox:latest`, `local/busybox` is `docker.io/local/busybox:latest`, a digest names content
 * whatever the tag. Pure.
 */

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|-+)';
const PATH_COMPONENT = new RegExp(`^${ALNUM}(?:${SEPARATOR}${ALNUM})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** The reference grammar's limit on the name (domain and path). */
const NAME_MAX = 255;

const DEFAULT_DOMAIN = 'docker.io';

export interface ImageReference {
  /** `docker.io/library/busybox`. */
  readonly name: string;
  /** Absent when the reference has a digest and no tag; `latest` when it has neither. */
  readonly tag?: string;
  readonly digest?: string;
  /** What the runtime pulls: `name@digest` when a digest is given (the tag is then ignored), else `name:tag`. */
  readonly canonical: string;
}

/** Docker's splitDockerDomain: the first component is a registry when it looks like a host, else Docker Hub's. */
function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  const isDomain = slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  let domain = isDomain ? first : DEFAULT_DOMAIN;
  let path = isDomain ? name.slice(slash + 1) : name;
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  return [domain, path];
}

/** The reference in its full form, or undefined when no runtime would accept it. */
export function parseImageReference(text: string): ImageReference | undefined {
  if (text.length === 0 || text.length > 4096) return undefined;
  const at = text.indexOf('@');
  const digest = at === -1 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !DIGEST.test(digest)) return undefined;
  const rest = at === -1 ? text : text.slice(0, at);
  const colon = rest.lastIndexOf(':');
  const hasTag = colon > rest.lastIndexOf('/');
  const tag = hasTag ? rest.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag)) return undefined;
  const written = hasTag ? rest.slice(0, colon) : rest;
  if (written.length === 0 || written.length > NAME_MAX) return undefined;
  const [domain, path] = splitDomain(written);
  if (!DOMAIN.test(domain) || !path.split('/').every((c) => PATH_COMPONENT.test(c))) return undefined;
  const name = `${domain}/${path}`;
  if (digest !== undefined) return { name, ...(tag !== undefined ? { tag } : {}), digest, canonical: `${name}@${digest}` };
  const effectiveTag = tag ?? 'latest';
  return { name, tag: effectiveTag, canonical: `${name}:${effectiveTag}` };
}

/** `sha256:<hex>` alone: a shared image named by its content. */
export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

/** An entry of a shared-images list: a reference any runtime accepts, or a digest alone. */
export function isImageReferenceOrDigest(text: string): boolean {
  return isDigest(text) || parseImageReference(text) !== undefined;
}
