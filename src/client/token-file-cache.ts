import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Env } from '../config/openstack-inputs.js';

/** Reuse a cached token until this long before it expires. */
export const REUSE_UNTIL_BEFORE_EXPIRY_MS = 120_000;
/** A lock older than this was left by a run that died: it is taken over (longer than one Keystone call may take). */
const STALE_LOCK_MS = 30_000;
/** How long a run waits for another run's authentication before authenticating itself. */
const LOCK_WAIT_MS = 20_000;

export interface CachedToken {
  readonly token: string;
  readonly expiresAt: string;
  /** The process the token was last handed to (kubectl), and when (ms since the epoch). */
  readonly servedTo?: { readonly caller: number; readonly at: number };
}

export function cacheDir(env: Env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : path.join(env.HOME ?? '.', '.cache');
  return path.join(base, 'zun-gateway');
}

/**
 * The cache file for a set of auth inputs: named by a hash of all of them, the secret included, so a changed
 * password or another project never reuses a token, and the file name reveals nothing.
 */
export function cacheFile(env: Env, key: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(key)).digest('hex');
  return path.join(cacheDir(env), `${digest}.json`);
}

export function readCachedToken(file: string, now: number): CachedToken | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<CachedToken>;
    if (typeof parsed.token !== 'string' || parsed.token === '' || typeof parsed.expiresAt !== 'string') return undefined;
    const expires = Date.parse(parsed.expiresAt);
    if (Number.isNaN(expires) || expires - REUSE_UNTIL_BEFORE_EXPIRY_MS <= now) return undefined;
    const served = parsed.servedTo;
    const servedTo = typeof served?.caller === 'number' && typeof served.at === 'number' ? { caller: served.caller, at: served.at } : undefined;
    return { token: parsed.token, expiresAt: parsed.expiresAt, ...(servedTo !== undefined ? { servedTo } : {}) };
  } catch {
    return undefined;
  }
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Written atomically (temp file + rename), readable by the owner only. */
export function writeCachedToken(file: string, token: CachedToken): void {
  const dir = path.dirname(file);
  ensureDir(dir);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify(token), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    throw err;
  }
}

/** A lock whose holder died (kubectl interrupted mid-authentication) need not be waited for. */
function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true; // not ours to judge: wait for it to go stale
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `issue` holding a lock file beside the cache file, so that kubectl runs started together (a script, `xargs
 * -P`) wait for one authentication instead of each making their own. Whoever waits re-reads the cache when the
 * lock goes away. A lock that cannot be made (read-only cache dir), whose process is gone, or that outlives
 * STALE_LOCK_MS is ignored.
 */
export async function withCacheLock<T>(
  file: string,
  now: () => number,
  reread: () => T | undefined,
  issue: () => Promise<T>,
  pause: (ms: number) => Promise<unknown> = sleep,
): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = now() + LOCK_WAIT_MS;
  for (;;) {
    let fd: number | undefined;
    try {
      ensureDir(path.dirname(lock));
      fd = openSync(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return issue();
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      try {
        return reread() ?? (await issue());
      } finally {
        try {
          unlinkSync(lock);
        } catch {
          /* taken over as stale */
        }
      }
    }
    let age = 0;
    let holder = '';
    try {
      age = Date.now() - statSync(lock).mtimeMs;
      holder = readFileSync(lock, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    if (age > STALE_LOCK_MS || (holder !== '' && !isAlive(Number(holder)))) {
      try {
        unlinkSync(lock);
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (now() > deadline) return issue();
    await pause(50);
    const done = reread();
    if (done !== undefined) return done;
  }
}
