import { readFileSync } from 'node:fs';
import { configError } from './load.js';

/** What went wrong with a path, in words (the errno code alone says little to an operator). */
function reason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** A file the configuration names, read at start: a failure names the setting, not only the path. */
export function readConfiguredFile(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw configError(`${setting}: cannot read ${file} (${reason(err)})`);
  }
}

/** A listener that cannot bind: which setting to change, and why. */
export function listenError(setting: string, host: string, port: number, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return configError(`${setting}: ${host}:${port} is already in use by another process; choose another port or stop that process`);
  if (code === 'EACCES') return configError(`${setting}: not allowed to listen on ${host}:${port} (ports below 1024 need privileges)`);
  if (code === 'EADDRNOTAVAIL') return configError(`${setting}: ${host} is not an address of this machine`);
  return err instanceof Error ? err : new Error(String(err));
}
