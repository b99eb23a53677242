import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../test/e2e/support/run.js';

export interface LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Socket errors and non-2xx/3xx answers. */
  readonly errors: number;
  /** wrk's own report, for when something looks wrong. */
  readonly report: string;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

export function parseWrk(out: string): LoadResult {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  const pct = (p: string): number => ms(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((a, b) => a + Number(b), 0);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: num(/(\d+) requests in/),
    errors: socketErrors + Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    report: out,
  };
}

/**
 * One wrk run (a separate process: the load generator's CPU is not the target's). The request is sent as raw bytes
 * from a Lua script, because wrk's -H keeps one value per header name and impersonation needs several
 * Impersonate-Group lines; every target gets its request the same way.
 */
export async function wrk(url: string, headers: ReadonlyArray<readonly [string, string]>, options: { connections: number; seconds: number; threads?: number }): Promise<LoadResult> {
  const u = new URL(url);
  const raw = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-wrk-'));
  const script = path.join(dir, 'request.lua');
  writeFileSync(script, `local req = ${JSON.stringify(raw)}\nrequest = function() return req end\n`);
  const threads = Math.min(options.connections, options.threads ?? 2);
  const res = await run('wrk', ['-t', String(threads), '-c', String(options.connections), '-d', `${options.seconds}s`, '--latency', '-s', script, url], {
    timeoutMs: (options.seconds + 30) * 1000,
  });
  if (res.code !== 0) throw new Error(`wrk failed (${res.code}): ${res.stderr}`);
  return parseWrk(res.stdout);
}
