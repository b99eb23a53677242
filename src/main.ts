#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError, loadConfigFile } from './config/load.js';
import { createGateway } from './gateway/gateway.js';
import { createLogger } from './observability/logger.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const version = packageVersion();

async function serve(configFile: string): Promise<void> {
  const config = loadConfigFile(configFile, process.env);
  const logger = createLogger(config.log.level);
  const gateway = await createGateway(config, { version, logger });
  await gateway.listen();
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || (err instanceof Error && err.name === 'K8sUpstreamError')) {
    process.stderr.write(`zun-gateway: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`zun-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
