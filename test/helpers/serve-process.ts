import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const MAIN = path.resolve('dist/src/main.js');

/**
 * Runs the built gateway's `serve` (with `nodeArgs` for node itself and `env` beside PATH) until it exits, or until
 * what it printed matches `until` (then stops it); fails after 20 s. Returns its exit code and everything it printed.
 */
export function runServe(config: string, env: NodeJS.ProcessEnv, until?: RegExp, nodeArgs: readonly string[] = []): Promise<{ code: number | null; out: string }> {
  return runMain(['serve', '--config', config], env, { until, nodeArgs });
}

/**
 * Runs the built `zun-gateway <args>` in `cwd` with `env` beside PATH until it exits, or until what it printed matches
 * `until` (then stops it); fails after 20 s.
 */
export function runMain(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { until?: RegExp | undefined; nodeArgs?: readonly string[]; cwd?: string } = {},
): Promise<{ code: number | null; out: string }> {
  const { until, nodeArgs = [] } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${until === undefined ? 'the gateway kept running' : `no line matching ${until}`} after 20 s:\n${out.slice(-2000)}`));
    }, 20_000);
    const read = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (until?.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => {
      clearTimeout(timer);
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
