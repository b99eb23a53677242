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
  if (matched.endpoint.pattern.at(-1) === 'top') for (const args of out.getAll('ps_args')) checkPsArgs(args);
  return out;
}

/**
 * `docker top c <ps options>`: the engine runs the host's `ps` with them and keeps the rows whose PID column is one
 * of the container's. A column renamed PID (`-o rss=PID`) passes its check, and a `ps` that fails with its `-q`
 * (`--forest`) is run again over every host process: other tenants' and the host's command lines and environments
 * came back (checked on dockerd 20.10). Renames are refused; `-ef`, `aux`, `-eo pid,comm` and the like pass.
 */
function checkPsArgs(args: string): void {
  if (args.includes('=')) throw refused('docker top with a renamed column (ps -o name=TITLE) is not served through the gateway: the engine would match rows by that column instead of the process id; drop the =TITLE');
}
