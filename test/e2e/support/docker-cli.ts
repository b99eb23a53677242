import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { e2eEnv } from './env.js';
import { Background, run, type RunResult } from './run.js';

/**
 * The docker CLI's environment for an engine API behind TLS at `host` (tcp://...), trusting the e2e CA (ca.pem), with
 * a client certificate when the endpoint asks for one and HTTP headers (~/.docker/config.json HttpHeaders) when given.
 */
export function dockerTlsEnv(host: string, options: { headers?: Record<string, string>; client?: { cert: string; key: string } } = {}): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zgw-docker-'));
  const certs = path.join(dir, 'certs');
  const config = path.join(dir, 'config');
  mkdirSync(certs);
  mkdirSync(config);
  copyFileSync(e2eEnv().tlsCa, path.join(certs, 'ca.pem'));
  if (options.client !== undefined) {
    copyFileSync(options.client.cert, path.join(certs, 'cert.pem'));
    copyFileSync(options.client.key, path.join(certs, 'key.pem'));
  }
  writeFileSync(path.join(config, 'config.json'), JSON.stringify(options.headers !== undefined ? { HttpHeaders: options.headers } : {}), { mode: 0o600 });
  return {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    DOCKER_HOST: host,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: certs,
    DOCKER_CONFIG: config,
  };
}

/**
 * A docker CLI set up as a tenant would: DOCKER_HOST=tcp://<gateway>/docker over TLS (DOCKER_TLS_VERIFY with the
 * gateway CA as ca.pem) and the Keystone credential in ~/.docker/config.json HttpHeaders.
 */
export class DockerUser {
  readonly env: Record<string, string>;

  constructor(gatewayPort: number, headers: Record<string, string>) {
    this.env = dockerTlsEnv(`tcp://127.0.0.1:${gatewayPort}/docker`, { headers });
  }

  docker(args: readonly string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    return run('docker', args, { env: this.env, timeoutMs: options.timeoutMs ?? 60_000, ...(options.input !== undefined ? { input: options.input } : {}) });
  }

  background(args: readonly string[]): Background {
    return new Background('docker', args, { env: this.env });
  }
}

/** The engine itself, on its private socket: for checks behind the gateway's back. */
export function engineDocker(args: readonly string[]): Promise<RunResult> {
  return run('docker', ['-H', `unix://${e2eEnv().dockerSocket}`, ...args], { env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir() } });
}

/** The label the gateway puts on every object it makes for a project. */
export const PROJECT_LABEL = 'org.openstack.zun-gateway.project-id';

/**
 * Removes the networks the gateway made for projects Keystone no longer has (the suites' throwaway projects) that
 * nothing is on. The engine outlives runs, and each network holds one of its address pools: earlier runs' leftovers
 * (31 networks) used them all up and a later run's `docker network create` failed. Returns those it could not remove.
 */
export async function removeLeftoverNetworks(projectIds: () => Promise<ReadonlySet<string>>): Promise<string[]> {
  const listed = await engineDocker(['network', 'ls', '--no-trunc', '--filter', `label=${PROJECT_LABEL}`, '--format', `{{.ID}} {{.Label "${PROJECT_LABEL}"}}`]);
  if (listed.code !== 0) throw new Error(`docker network ls on the e2e engine failed: ${listed.stderr}`);
  // The projects after the networks: a project made in between (another run's) is then known, not taken for gone.
  const projects = await projectIds();
  const kept: string[] = [];
  for (const line of listed.stdout.split('\n')) {
    const [id, project] = line.split(' ');
    if (id === undefined || id === '' || project === undefined || projects.has(project)) continue;
    if ((await engineDocker(['network', 'rm', id])).code !== 0) kept.push(id);
  }
  return kept;
}
