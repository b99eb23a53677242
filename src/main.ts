#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runCredential } from './client/exec-credential.js';
import { runKubeconfig, type KubeconfigCommandOptions } from './client/kubeconfig.js';
import { loadConfigFile } from './config/load.js';
import { hasCode } from './errors.js';
import { keepOldGenerationHeadroom } from './gateway/heap-headroom.js';
import { createAuditTrail } from './observability/audit.js';
import { createLogger, stdoutDestination } from './observability/logger.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const version = packageVersion();
const stdio = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) };

async function serve(configFile: string): Promise<void> {
  keepOldGenerationHeadroom();
  const config = loadConfigFile(configFile, process.env);
  const stdout = stdoutDestination();
  const logger = createLogger(config.log.level, stdout);
  // Loaded here, not above: `credential` runs before every kubectl command and must not pay for the server's modules.
  const { createGateway } = await import('./gateway/gateway.js');
  const audit = createAuditTrail(config.audit, stdout);
  const gateway = await createGateway(config, { version, logger, audit });
  await gateway.listen();
  // A wrong service password or Keystone URL is said at start, not at the first tenant's request.
  void gateway.keystoneReady().then((check) => {
    const fields = { keystone: check.detail, authUrl: config.keystone.authUrl };
    if (check.blocking === true) logger.error(fields, 'not ready: Keystone check failed at start (see /readyz)');
    else if (!check.ok) logger.warn(fields, 'Keystone check failed at start: new tokens get 503 until it answers');
  });
  // logrotate and similar move the audit file away and send SIGHUP: write on in a new file.
  process.on('SIGHUP', () => {
    audit.reopen();
    if (config.audit.destination === 'file') logger.info({ file: config.audit.file }, 'audit file reopened (SIGHUP)');
    else logger.info(`SIGHUP: nothing to reopen (the audit goes to ${config.audit.destination})`);
  });
  const stop = (signal: string): void => {
    logger.info({ signal }, 'signal received');
    gateway
      .shutdown()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

const program = new Command()
  .name('zun-gateway')
  .description('Keystone-authenticated gateway: kubectl and docker for OpenStack tenants')
  .version(version);

program
  .command('serve')
  .description('run the gateway')
  .option('-c, --config <file>', 'configuration file (YAML)', process.env.ZUN_GATEWAY_CONFIG ?? 'gateway.yaml')
  .action(async (opts: { config: string }) => {
    await serve(opts.config);
  });

program
  .command('credential')
  .description('kubectl exec credential plugin: prints an ExecCredential with a Keystone token from OS_* / clouds.yaml')
  .action(async () => {
    // Run by kubectl (client-go sets KUBERNETES_EXEC_INFO): kubectl is the parent, and asks again only after a 401.
    const byKubectl = (process.env.KUBERNETES_EXEC_INFO ?? '') !== '';
    process.exitCode = await runCredential(process.env, stdio, byKubectl ? { caller: process.ppid } : {});
  });

program
  .command('kubeconfig')
  .description('writes a kubeconfig for the gateway whose user runs `zun-gateway credential`')
  .requiredOption('--server <url>', 'the gateway URL, e.g. https://gateway.example:8443')
  .option('--certificate-authority <file>', "the CA that signed the gateway's certificate")
  .option('--insecure-skip-tls-verify', 'do not verify the gateway certificate (testing only)')
  .option('--output <file>', 'write to this file (mode 0600) instead of stdout')
  .option('--context-name <name>', 'name of the cluster, user and context', 'zun-gateway')
  .option('--namespace <ns>', 'context namespace; default: the project namespace the gateway reports')
  .action(async (opts: KubeconfigCommandOptions) => {
    process.exitCode = await runKubeconfig(opts, process.env, stdio, { mainScript: fileURLToPath(import.meta.url), nodePath: process.execPath });
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (hasCode(err, 'config_invalid')) {
    process.stderr.write(`zun-gateway: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`zun-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
