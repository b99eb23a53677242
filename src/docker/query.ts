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
 * `docker top c <ps options>`. The engine runs the host's `ps <options> -q <the container's pids>`, and when that fails
 * (sort, selection, forest and negation options conflict with `-q`) runs `ps <options>` over every host process,
 * keeping the rows whose column titled PID holds one of the container's pids, and the rows with `-` there after one.
 * The titles are whatever the first line says: a column renamed PID (`-o rss=PID`), no header line (`--no-headers`,
 * the first process's line taken for titles) or values with spaces ahead of the PID column let other tenants' and the
 * host's processes through (reviews 2026-12-07, dockerd 20.10). So only forms whose titles are ps's own and whose
 * columns up to PID never hold spaces are served: the usual fixed ones, or `-o`/`-eo` with listed columns, the PID
 * column among them, and a command column only last.
 */
const PS_FORMS = new Set(['-ef', '-eF', '-f', '-F', '-e', '-A', '-Af', '-l', '-el', '-ely', '-ly', '-eLf', 'aux', '-aux', 'ax', 'axu', 'u', 'au']);
const PS_COLUMN_OPTIONS = new Set(['-o', '-eo', '-Ao', 'o', 'axo']);
/** Columns whose values are one word (so they cannot shift the PID column). */
const PS_COLUMNS = new Set(
  ['pid', 'ppid', 'pgid', 'sid', 'tid', 'lwp', 'nlwp', 'uid', 'euid', 'ruid', 'user', 'euser', 'ruser', 'gid', 'egid', 'group', 'egroup', 'tty', 'tt', 'stat', 's', 'ni', 'nice', 'pri', 'rss', 'rsz', 'vsz', 'sz', 'pcpu', '%cpu', 'pmem', '%mem', 'time', 'cputime', 'etime', 'etimes', 'c', 'psr', 'stime'],
);
/** Command columns, one of which may come last. */
const PS_LAST_COLUMNS = new Set(['args', 'cmd', 'command', 'comm', 'ucmd', 'ucomm']);

function checkPsArgs(args: string): void {
  const words = args.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length === 0 || (words.length === 1 && PS_FORMS.has(words[0] as string))) return;
  if (words.length === 2 && PS_COLUMN_OPTIONS.has(words[0] as string)) {
    const columns = (words[1] as string).split(',');
    const last = columns[columns.length - 1] as string;
    const leading = PS_LAST_COLUMNS.has(last) ? columns.slice(0, -1) : columns;
    if (leading.includes('pid') && leading.every((c) => PS_COLUMNS.has(c))) return;
  }
  throw refused(
    `docker top ${args} is not served through the gateway: the engine would match ps's rows by a column it cannot trust; use no options, one of ${[...PS_FORMS].join(' ')}, or -o/-eo with columns among ${[...PS_COLUMNS].join(',')} (pid included) and optionally one of ${[...PS_LAST_COLUMNS].join(',')} last`,
  );
}
