import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion with an optional stdin, a time bound, and the output kept. */
export function run(command: string, args: readonly string[], options: SpawnOptions & { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    // A command that exits before reading all its input (it failed) must report its exit, not crash the runner.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  });
}

/** A long-running child whose output is collected as it comes, for watches, `logs -f` and port-forward. */
export class Background {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly waiters: Array<() => void> = [];

  constructor(command: string, args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString('utf8');
      this.notify();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8');
      this.notify();
    });
    this.child.on('close', () => this.notify());
  }

  /** Resolves when the predicate holds on the output so far; rejects with the output after the timeout. */
  waitFor(predicate: (stdout: string, stderr: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (predicate(this.stdout, this.stderr)) {
          clearTimeout(timer);
          resolve();
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        reject(new Error(`timed out waiting for ${what}\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      if (check()) return;
      const waiter = (): void => {
        if (!check()) this.waiters.push(waiter);
      };
      this.waiters.push(waiter);
    });
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('close', () => resolve());
      this.child.kill('SIGTERM');
      setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
    });
  }

  private notify(): void {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w();
  }
}
