import { GatewayError } from '../errors.js';

/**
 * Request bodies as the Docker daemon will read them (invariants.md 17). The daemon (Go encoding/json) matches
 * object keys to struct fields case-insensitively, with Unicode simple folding (the Kelvin sign folds to k, the long
 * s to s), and the last duplicate wins. So:
 *  - JSON.parse already keeps the last of exact duplicates, as Go does, and the gateway forwards
 *    JSON.stringify of what it parsed: the daemon sees exactly the checked value;
 *  - two keys of one object that fold to the same name are refused: which one Go would use depends on field order.
 */
export const bodyError = (message: string): GatewayError => new GatewayError('body_invalid', message);

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The name Go's encoding/json would match a key against, for the ASCII field names Docker uses. */
export function foldKey(key: string): string {
  return key.replace(/\u212a/g, 'k').replace(/\u017f/g, 's').toLowerCase();
}

export function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkFolds(value: Json, where: string): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkFolds(v, `${where}[${i}]`));
    return;
  }
  if (!isObject(value)) return;
  const seen = new Map<string, string>();
  for (const key of Object.keys(value)) {
    const folded = foldKey(key);
    const other = seen.get(folded);
    if (other !== undefined) {
      throw bodyError(`the body has both "${other}" and "${key}" in ${where || 'the top level'}: send each field once`);
    }
    seen.set(folded, key);
    checkFolds(value[key] as Json, where ? `${where}.${key}` : key);
  }
}

/** Parses a request body, refusing invalid JSON, non-objects and fold-equal duplicate keys at any depth. */
export function parseBody(raw: Buffer): JsonObject {
  if (raw.length === 0) return {};
  let value: Json;
  try {
    value = JSON.parse(raw.toString('utf8')) as Json;
  } catch (err) {
    throw bodyError(`the body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw bodyError('the body must be a JSON object');
  checkFolds(value, '');
  return value;
}

/** A field of an object, looked up the way the daemon would (folded). */
export function field(obj: Json | undefined, name: string): Json | undefined {
  if (!isObject(obj)) return undefined;
  const want = foldKey(name);
  for (const key of Object.keys(obj)) if (foldKey(key) === want) return obj[key];
  return undefined;
}

/** Sets a field, replacing whatever spelling the client used. */
export function setField(obj: JsonObject, name: string, value: Json): void {
  const want = foldKey(name);
  for (const key of Object.keys(obj)) if (foldKey(key) === want) delete obj[key];
  obj[name] = value;
}
