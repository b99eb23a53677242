import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const MAIN = path.resolve('dist/src/main.js');

/** Processes runMain started that have not exited yet: stopServes() kills them (after a test that failed or timed out). */
const running = new Set<ChildProcess>();

/** Kills what runMain started and is still running (an afterEach of the suites that use it). */
export function stopServes(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/**
 * Runs the built gateway's `serve` (with `nodeArgs` for node itself and `env` beside PATH) until it exits, or until
 * what it printed matches `until` (then stops it). Returns its exit code and everything it printed.
 */
export function runServe(config: string, env: NodeJS.ProcessEnv, until?: RegExp, nodeArgs: readonly string[] = []): Promise<{ code: number | null; out: string }> {
  return runMain(['serve', '--config', config], env, { until, nodeArgs });
}

/**
 * Runs the built `zun-gateway <args>` in `cwd` with `env` beside PATH until it exits, or until what it printed matches
 * `until` (then stops it). No deadline of its own: a process start takes what it takes on a busy machine, and the
 * test's (mocha's) timeout bounds it; stopServes() then kills what is left.
 */
export function runMain(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { until?: RegExp | undefined; nodeArgs?: readonly string[]; cwd?: string } = {},
): Promise<{ code: number | null; out: string }> {
  const { until, nodeArgs = [] } = options;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    running.add(child);
    let out = '';
    const read = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (until?.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => {
      running.delete(child);
      resolve({ code, out });
    });
  });
}

/**
 * Writes `<dir>/gateway.yaml`: a gateway on a free loopback port whose Keystone is a closed port (it serves, and
 * stays unready), plus `extra` lines. Returns the file's path.
 */
export function deadKeystoneConfig(dir: string, extra: readonly string[] = []): string {
  const file = path.join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'listen: {host: 127.0.0.1, port: 0}',
      'keystone:',
      '  authUrl: http://127.0.0.1:9/v3',
      '  serviceCredentials: {username: gateway, password: p, userDomainName: Default, projectName: service, projectDomainName: Default}',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}
