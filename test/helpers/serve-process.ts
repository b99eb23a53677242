import { spawn } from 'node:child_process';
import path from 'node:path';

const MAIN = path.resolve('dist/src/main.js');

/**
 * Runs the built gateway's `serve` (with `nodeArgs` for node itself and `env` beside PATH) until it exits, or until
 * what it printed matches `until` (then stops it); fails after 20 s. Returns its exit code and everything it printed.
 */
export function runServe(config: string, env: NodeJS.ProcessEnv, until?: RegExp, nodeArgs: readonly string[] = []): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, MAIN, 'serve', '--config', config], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
