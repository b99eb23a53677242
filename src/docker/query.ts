import type { Identity } from '../auth/identity.js';
import type { DockerConfig } from '../config/schema.js';
import { ownerFilters } from './ownership.js';
import { refused, type Matched } from './policy.js';
import { checkPullSource } from './registries.js';

/** The query that goes to the engine: lists and events filtered to the project; pulls only from allowed registries. */
export function engineQuery(matched: Matched, query: URLSearchParams, identity: Identity, config: DockerConfig): URLSearchParams {
  const out = new URLSearchParams(query);
  if (matched.endpoint.list) out.set('filters', ownerFilters(query.get('filters'), identity.project.id));
  if (matched.endpoint.special === 'image-pull') {
    const image = out.get('fromImage');
    if (image === null || out.has('fromSrc') || out.has('repo')) {
      throw refused('POST /images/create is served for pulls only (?fromImage=); importing images is engine-wide');
    }
    checkPullSource(image, config.allowedRegistries);
  }
  return out;
}
