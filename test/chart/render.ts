import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

/** The repository root, from dist/test/chart/render.js. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CHART_DIR = path.join(REPO_ROOT, 'charts/zun-gateway');
/** The real helm (v4) from the npm devDependency, unpacked once by scripts/helm. */
export const HELM = path.join(REPO_ROOT, 'scripts/helm');
export const FULL_VALUES = path.join(REPO_ROOT, 'test/chart/values-full.yaml');
/** The release name the e2e environment renders the ClusterRole with (its objects are named zun-gateway). */
export const RELEASE = 'zun-gateway';

const execFileP = promisify(execFile);

export async function helm(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(HELM, [...args], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at a dotted path (array indexes as numbers), or undefined when any step is missing. */
export function at(value: unknown, ...keys: (string | number)[]): unknown {
  let cur: unknown = value;
  for (const key of keys) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? (cur[key] as unknown) : undefined;
    else cur = isObj(cur) ? cur[key] : undefined;
  }
  return cur;
}

export function objAt(value: unknown, ...keys: (string | number)[]): Obj {
  const found = at(value, ...keys);
  if (!isObj(found)) throw new Error(`expected an object at ${keys.join('.')}, found ${JSON.stringify(found)}`);
  return found;
}

export function listAt(value: unknown, ...keys: (string | number)[]): unknown[] {
  const found = at(value, ...keys);
  if (!Array.isArray(found)) throw new Error(`expected a list at ${keys.join('.')}, found ${JSON.stringify(found)}`);
  return found as unknown[];
}

export function strAt(value: unknown, ...keys: (string | number)[]): string {
  const found = at(value, ...keys);
  if (typeof found !== 'string') throw new Error(`expected a string at ${keys.join('.')}, found ${JSON.stringify(found)}`);
  return found;
}

export interface RenderOptions {
  /** The release name; default zun-gateway (the objects are then named zun-gateway). */
  readonly release?: string;
  readonly valuesFiles?: readonly string[];
  /** --set key=value pairs. */
  readonly set?: Readonly<Record<string, string>>;
  readonly namespace?: string;
  /** --kube-version: the HPA and PDB apiVersions follow it. */
  readonly kubeVersion?: string;
  readonly showOnly?: readonly string[];
}

export function templateArgs(options: RenderOptions = {}): string[] {
  const args = ['template', options.release ?? RELEASE, CHART_DIR, '--namespace', options.namespace ?? 'zun'];
  for (const f of options.valuesFiles ?? []) args.push('--values', f);
  for (const [k, v] of Object.entries(options.set ?? {})) args.push('--set', `${k}=${v}`);
  if (options.kubeVersion !== undefined) args.push('--kube-version', options.kubeVersion);
  for (const t of options.showOnly ?? []) args.push('--show-only', t);
  return args;
}

export interface Rendered {
  readonly text: string;
  readonly objects: readonly Obj[];
  /** The one object of this kind (and name, when given); throws when there is none or more than one. */
  one(kind: string, name?: string): Obj;
  all(kind: string): Obj[];
}

export function parseManifests(text: string): Rendered {
  const objects: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message ?? ''}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isObj(value)) throw new Error(`a rendered document is not an object: ${JSON.stringify(value)}`);
    objects.push(value);
  }
  const all = (kind: string): Obj[] => objects.filter((o) => o.kind === kind);
  return {
    text,
    objects,
    all,
    one(kind: string, name?: string): Obj {
      const found = all(kind).filter((o) => name === undefined || at(o, 'metadata', 'name') === name);
      if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, rendered ${found.length}`);
      return found[0] as Obj;
    },
  };
}

export async function render(options: RenderOptions = {}): Promise<Rendered> {
  const { stdout } = await helm(templateArgs(options));
  return parseManifests(stdout);
}

/** One permission a ClusterRole grants: RBAC rules expanded, so two role texts compare regardless of grouping and order. */
export function permissions(rules: readonly unknown[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    const groups = listAt(rule, 'apiGroups');
    const resources = listAt(rule, 'resources');
    const verbs = listAt(rule, 'verbs');
    const names = at(rule, 'resourceNames');
    const nameList: unknown[] = Array.isArray(names) && names.length > 0 ? names : ['*any*'];
    if (at(rule, 'nonResourceURLs') !== undefined) out.add(`nonResourceURLs ${JSON.stringify(at(rule, 'nonResourceURLs'))}`);
    for (const g of groups) for (const r of resources) for (const v of verbs) for (const n of nameList) {
      out.add(`${String(g) || 'core'} ${String(r)} ${String(v)} ${String(n)}`);
    }
  }
  return [...out].sort();
}
