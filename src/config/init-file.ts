import { chmodSync, writeFileSync } from 'node:fs';
import { Document, isMap, isScalar, Scalar, type Pair } from 'yaml';
import { DEFAULT_PORT, PASSWORD_VARIABLE, type Discovery } from './discover.js';
import { configError } from './load.js';

/** Comment text wrapped to the width of the rest of the project's YAML. */
function wrap(text: string, width = 110): string {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    lines.push(line);
  }
  return lines.map((l) => ` ${l}`).join('\n');
}

/** Puts `text` as a comment above the top-level key `key` (or the nested key under it). */
function commentAbove(doc: Document, keys: readonly string[], text: string, spaceBefore = keys.length === 1): void {
  let node: unknown = doc.contents;
  let pair: Pair | undefined;
  for (const key of keys) {
    if (!isMap(node)) return;
    pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
    if (pair === undefined) return;
    node = pair.value;
  }
  if (pair === undefined) return;
  const key = isScalar(pair.key) ? pair.key : new Scalar(pair.key);
  key.commentBefore = wrap(text);
  key.spaceBefore = spaceBefore;
  pair.key = key;
}

/**
 * `zun-gateway init`: the configuration the zero-configuration start would use, as a file to edit. It holds no secret:
 * each is `${NAME}` of the variable it came from (GATEWAY_PASSWORD for one that came from clouds.yaml).
 */
export function initFileText(discovery: Discovery): string {
  const doc = new Document(discovery.document);
  doc.commentBefore = wrap(
    'zun-gateway configuration, written by `zun-gateway init` from what this machine has. `npm start` (or ' +
      '`zun-gateway serve`) reads ./gateway.yaml, or the file ZUN_GATEWAY_CONFIG names. Every setting: README.md ' +
      '"Configuration reference". ${NAME} is the environment variable NAME.',
  );
  commentAbove(
    doc,
    ['listen'],
    `This machine only, port $ZUN_GATEWAY_PORT (default ${DEFAULT_PORT}). HTTPS with a certificate signed by the CA in ` +
      `${discovery.tls.ca}, which the gateway made at its first start and keeps: tenants pass that file as ` +
      '--certificate-authority. To serve others, set host (0.0.0.0) and a certificate for the name they use.',
    false,
  );
  const passwordFromFile = PASSWORD_VARIABLE in discovery.secrets;
  commentAbove(
    doc,
    ['keystone'],
    `The gateway's own identity: ${discovery.origins.keystone}. It validates users' tokens, so it needs the 'service' ` +
      'role (or admin).' +
      (passwordFromFile
        ? `\nThe secret came from clouds.yaml and is not copied here: export ${PASSWORD_VARIABLE} before starting, or write ` +
          'it in place of the placeholder (then keep this file mode 0600).'
        : ''),
  );
  commentAbove(
    doc,
    ['keystone', 'serviceType'],
    'The type `zun-gateway register --type` lists the gateway under in the catalog: application credentials with access ' +
      'rules for it (zun-gateway docker-config makes them) are accepted for what their rules allow.',
  );
  if (discovery.origins.k8s !== undefined) {
    commentAbove(doc, ['k8s'], `/k8s: ${discovery.origins.k8s}. The gateway impersonates tenants there: its own identity needs impersonate (and, for tenancy, namespaces and rolebindings): README "How a request is handled".`);
    commentAbove(
      doc,
      ['k8s', 'tenancy'],
      'A namespace os-<project name> and role bindings per project, made at its first request. Tenants\' pods are ' +
        'checked only once the apiserver calls the gateway\'s webhook: README "Pods without the Helm chart".',
    );
  }
  if (discovery.origins.docker !== undefined) commentAbove(doc, ['docker'], `/docker: ${discovery.origins.docker}.`);
  const notFound = discovery.notFound.map((line) => wrap(`not found: ${line}`)).join('\n');
  doc.comment = [
    notFound,
    wrap('More settings (README "Configuration reference"), for example:'),
    ' log: {level: info}',
    ' audit: {destination: file, file: /var/log/zun-gateway/audit.log}',
    ' metrics: {host: 127.0.0.1, port: 9090}',
  ]
    .filter((l) => l !== '')
    .join('\n');
  return doc.toString({ lineWidth: 0 });
}

/** Writes the file for `init`, mode 0600 (it may be edited to hold a secret); an existing file only with `force`. */
export function writeInitFile(file: string, text: string, force: boolean): void {
  try {
    writeFileSync(file, text, { mode: 0o600, flag: force ? 'w' : 'wx' });
    chmodSync(file, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw configError(`${file} exists already: pass --force to replace it, or --output <another file>`);
    throw configError(`cannot write ${file} (${code ?? (err as Error).message})`);
  }
}
