import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';

export { freePort } from '../../test/e2e/support/gateway-process.js';

export async function waitForPort(port: number, timeoutMs = 20_000, child?: ChildProcess, what = 'process'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A server process of a benchmark target, its output in a log file. */
export interface Service {
  readonly name: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export function startService(name: string, command: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; service: Service } {
  const out = openSync(logFile, 'a');
  const child = spawn(command, args, { env, stdio: ['ignore', out, out] });
  const service: Service = {
    name,
    get pid() {
      return child.pid ?? -1;
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
  return { child, service };
}

/** Resident memory of a process in bytes (VmRSS), from /proc. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function rssSampler(pid: number, everyMs = 10): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // The process ended.
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** A process and every live descendant (nginx's worker, say), each with its CPU ticks so far. */
function processTree(pid: number): Array<{ pid: number; ticks: number }> {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command name (which may hold spaces): state ppid ... utime(14) stime(15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const self = Number(entry);
    const parent = Number(fields[1]);
    ticks.set(self, Number(fields[11]) + Number(fields[12]));
    const list = children.get(parent) ?? [];
    list.push(self);
    children.set(parent, list);
  }
  const tree: Array<{ pid: number; ticks: number }> = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    if (ticks.has(p)) tree.push({ pid: p, ticks: ticks.get(p) as number });
    stack.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** User plus system CPU seconds used so far by a process and every live descendant. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + p.ticks, 0) / 100; // USER_HZ
}

/** Resident memory of a process and every live descendant, in bytes. */
export function treeRssBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += rssBytes(p.pid);
    } catch {
      // Gone since the tree was read.
    }
  }
  return total;
}

/** The machine's CPU time so far, all cores, in USER_HZ ticks: idle (idle and iowait) and in all (/proc/stat). */
export function machineTicks(): { idle: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((sum, n) => sum + n, 0) };
}
