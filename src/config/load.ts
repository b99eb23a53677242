import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { GatewayError } from '../errors.js';
import { configSchema, type GatewayConfig } from './schema.js';

/** A configuration problem, with the key it is about and what to do (main.ts exits with 2). */
export const configError = (message: string): GatewayError => new GatewayError('config_invalid', message);

type Env = Readonly<Record<string, string | undefined>>;

const PLACEHOLDER = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` (or `${NAME:-default}`) in every string value with the environment variable, so secrets can
 * stay out of the file. `$$` is a literal `$`. Substitution happens after YAML parsing, so a secret full of YAML
 * syntax cannot change the document's structure.
 */
export function substituteEnv(value: unknown, env: Env, path: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(PLACEHOLDER, (match: string, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const found = env[name as string];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      throw configError(`${keyName(path)}: environment variable ${name} is not set (referenced as \${${name}})`);
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, env, [...path, String(i)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, [...path, k]);
    return out;
  }
  return value;
}

function keyName(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

type Issue = z.core.$ZodIssue;

/** A union branch that cannot be the one meant: the value is not even of its type, or has keys it does not know. */
function plainlyOtherBranch(branch: readonly Issue[]): boolean {
  return branch.some((i) => i.code === 'unrecognized_keys' || (i.code === 'invalid_type' && i.path.length === 0));
}

/**
 * One line per problem, named by its key. For a value matching none of a union's forms, the problems of the one
 * form it was plainly meant as (a size with a typo, credentials missing their secret) rather than a generic line.
 */
function issueLines(issue: Issue, base: readonly PropertyKey[]): string[] {
  const path = [...base, ...issue.path];
  if (issue.code === 'invalid_union') {
    const meant = issue.errors.filter((branch) => !plainlyOtherBranch(branch));
    if (meant.length === 1) return (meant[0] as Issue[]).flatMap((i) => issueLines(i, path));
  }
  const key = keyName(path);
  if (issue.code === 'unrecognized_keys') return [`${key}: unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`];
  if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) return [`${key}: missing (required)`];
  return [`${key}: ${issue.message}`];
}

function describeIssues(error: z.ZodError): string {
  return error.issues.flatMap((issue) => issueLines(issue, [])).join('\n  ');
}

/**
 * `{password: ${GATEWAY_PASSWORD}}` is not YAML: in a flow collection (`{ }`, `[ ]`) a `{` cannot start a plain
 * value. The parser's message does not say so, so the line of the error is checked for an unquoted `${`.
 */
function unquotedPlaceholderHint(text: string, line: number | undefined): string {
  if (line === undefined) return '';
  const content = text.split(/\r?\n/)[line - 1] ?? '';
  if (!/(^|[^"'$])\$\{/.test(content)) return '';
  return '\n(a ${NAME} inside { } or [ ] must be quoted, e.g. {password: "${GATEWAY_PASSWORD}"}; or write the mapping one key per line)';
}

/** Parses and validates configuration text. Throws a `config_invalid` GatewayError naming every bad key. */
export function parseConfig(text: string, env: Env, source = 'configuration'): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw configError(`${source} is not valid YAML: ${first?.message ?? 'parse error'}${unquotedPlaceholderHint(text, first?.linePos?.[0]?.line)}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const substituted = substituteEnv(raw, env);
  const result = configSchema.safeParse(substituted);
  if (!result.success) {
    throw configError(`${source} is invalid:\n  ${describeIssues(result.error)}`);
  }
  return result.data;
}

export function loadConfigFile(file: string, env: Env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw configError(
      `cannot read configuration file ${file} (${code}); pass --config <file.yaml> or set ZUN_GATEWAY_CONFIG, or neither (and no ./gateway.yaml) to start from OS_CLOUD or OS_*, KUBECONFIG and DOCKER_HOST`,
    );
  }
  return parseConfig(text, env, file);
}
