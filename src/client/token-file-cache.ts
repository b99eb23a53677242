import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Env } from './openstack-inputs.js';

/** Reuse a cached token until this long before it expires. */
export const REUSE_UNTIL_BEFORE_EXPIRY_MS = 120_000;

export interface CachedToken {
  readonly token: string;
  readonly expiresAt: string;
}

export function cacheDir(env: Env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : path.join(env.HOME ?? '.', '.cache');
  return path.join(base, 'zun-gateway');
}

/**
 * The cache file for a set of auth inputs: named by a hash of all of them, the secret included, so a changed
 * password or another project never reuses a token, and the file name reveals nothing.
 */
export function cacheFile(env: Env, inputs: unknown): string {
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
  return path.join(cacheDir(env), `${key}.json`);
}

export function readCachedToken(file: string, now: number): CachedToken | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<CachedToken>;
    if (typeof parsed.token !== 'string' || typeof parsed.expiresAt !== 'string') return undefined;
    if (Date.parse(parsed.expiresAt) - REUSE_UNTIL_BEFORE_EXPIRY_MS <= now) return undefined;
    return { token: parsed.token, expiresAt: parsed.expiresAt };
  } catch {
    return undefined;
  }
}

/** Written atomically (temp file + rename), readable by the owner only. */
export function writeCachedToken(file: string, token: CachedToken): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = path.join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, JSON.stringify(token), { mode: 0o600 });
  renameSync(tmp, file);
}
