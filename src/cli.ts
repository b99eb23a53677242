import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { DockerConfigCommandOptions } from './client/docker-config.js';
import { runCredential } from './client/exec-credential.js';
import type { KubeconfigCommandOptions } from './client/kubeconfig.js';
import type { RegisterCommandOptions } from './client/register.js';
import { loadConfigFile } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { GatewayError, hasCode } from './errors.js';
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

/** The entry script (main.ts), which kubectl runs as the exec plugin when zun-gateway is not on PATH. */
const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));

/** How this machine runs zun-gateway, for commands printed to the user. */
async function selfCommand(): Promise<string> {
  const { pluginCommand } = await import('./client/kubeconfig.js');
  const { command, args } = pluginCommand(process.env, mainScript, process.execPath);
  return command === 'zun-gateway' ? command : `${command} ${args[0] ?? ''}`;
}

/** --config, else ZUN_GATEWAY_CONFIG, else ./gateway.yaml when it exists; undefined: start from what the machine has. */
function configFileToUse(option: string | undefined): string | undefined {
  const fromEnv = process.env.ZUN_GATEWAY_CONFIG;
  if (option !== undefined) return option;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return existsSync('gateway.yaml') ? 'gateway.yaml' : undefined;
}

/**
 * The configuration found on this machine (config/discover.ts), with the certificate files it names made if needed.
 * Loaded on demand: node-forge is not for every `credential` run.
 */
async function discovered() {
  const { discover, discoveredConfig, SERVING_HOSTS } = await import('./config/discover.js');
  const { ensureServingTls } = await import('./config/self-signed-tls.js');
  const discovery = discover(process.env, { cwd: process.cwd() });
  const config = discoveredConfig(discovery, process.env);
  const { createdCa } = ensureServingTls(discovery.tls, { hosts: SERVING_HOSTS });
  return { discovery, config, createdCa };
}

async function serveDiscovered(): Promise<void> {
  const { discovery, config, createdCa } = await discovered();
  const { startSummary } = await import('./config/start-summary.js');
  const address = await serve(config).catch((err: unknown) => {
    // The setting a listen error names is the file's; without a file, the port came from ZUN_GATEWAY_PORT.
    if (hasCode(err, 'config_invalid') && err.message.startsWith('listen.port:')) {
      throw new GatewayError('config_invalid', `${err.message}; without a configuration file the port is ZUN_GATEWAY_PORT (default 8443)`);
    }
    throw err;
  });
  const url = `https://${config.listen.host}:${address.port}`;
  process.stderr.write(startSummary({ discovery, url, createdCa, self: await selfCommand(), serviceType: config.keystone.serviceType }));
}

async function serve(config: GatewayConfig): Promise<{ port: number }> {
  const stdout = stdoutDestination();
  const logger = createLogger(config.log.level, stdout);
  // Loaded here, not above: `credential` runs before every kubectl command and must not pay for the server's modules.
  const { createGateway } = await import('./gateway/gateway.js');
  const audit = createAuditTrail(config.audit, stdout);
  const gateway = await createGateway(config, { version, logger, audit });
  const address = await gateway.listen();
  // A wrong service password or Keystone URL is said at start, not at the first tenant's request.
  void gateway.keystoneReady().then((check) => {
    const fields = { keystone: check.detail, authUrl: config.keystone.authUrl };
    if (check.blocking === true) logger.error(fields, 'not ready: Keystone check failed at start (see /readyz)');
    else if (!check.ok) logger.warn(fields, 'Keystone check failed at start: new tokens get 503 until it answers');
  });
  // What each upstream's check has to say to the operator (tenant isolation on the engine), once at start.
  void gateway.readiness().then((checks) => {
    for (const [name, check] of Object.entries(checks)) for (const warning of check.warnings ?? []) logger.warn({ check: name }, warning);
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
  return address;
}

const program = new Command()
  .name('zun-gateway')
  .description('Keystone-authenticated gateway: kubectl and docker for OpenStack tenants')
  .version(version);

program
  .command('serve')
  .description('run the gateway')
  .option('-c, --config <file>', 'configuration file (YAML); default $ZUN_GATEWAY_CONFIG, else ./gateway.yaml, else none: OS_CLOUD/OS_*, KUBECONFIG and DOCKER_HOST')
  .action(async (opts: { config?: string }) => {
    const file = configFileToUse(opts.config);
    if (file === undefined) await serveDiscovered();
    else await serve(loadConfigFile(file, process.env));
  });

program
  .command('init')
  .description('writes the configuration `serve` would find on this machine (OS_CLOUD/OS_*, KUBECONFIG, DOCKER_HOST) as a commented YAML file')
  .option('--output <file>', 'where to write it (mode 0600); - for stdout', 'gateway.yaml')
  .option('--force', 'replace the file when it exists')
  .action(async (opts: { output: string; force?: boolean }) => {
    const { discovery, createdCa } = await discovered();
    const { initFileText, writeInitFile } = await import('./config/init-file.js');
    const { PASSWORD_VARIABLE } = await import('./config/discover.js');
    const text = initFileText(discovery);
    if (opts.output === '-') process.stdout.write(text);
    else writeInitFile(opts.output, text, opts.force === true);
    const lines = [
      ...(opts.output === '-' ? [] : [`zun-gateway init: wrote ${opts.output}; start with it: ${await selfCommand()} serve --config ${opts.output} (or npm start in the clone)`]),
      ...discovery.notFound.map((line) => `  not found: ${line}`),
      `  CA: ${discovery.tls.ca}${createdCa ? ' (made now)' : ''}`,
      ...(PASSWORD_VARIABLE in discovery.secrets ? [`  the password came from clouds.yaml and is not in the file: export ${PASSWORD_VARIABLE} before starting`] : []),
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
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
  .option('--server <url>', 'the gateway URL, e.g. https://gateway.example:8443; default: its public endpoint in your Keystone catalog (OS_REGION_NAME honoured)')
  .option('--service-type <type>', 'the catalog service type the gateway is registered under', 'zun-gateway')
  .option('--certificate-authority <file>', "the CA that signed the gateway's certificate")
  .option('--insecure-skip-tls-verify', 'do not verify the gateway certificate (testing only)')
  .option('--output <file>', 'write to this file (mode 0600) instead of stdout')
  .option('--context-name <name>', 'name of the cluster, user and context', 'zun-gateway')
  .option('--namespace <ns>', 'context namespace; default: the project namespace the gateway reports')
  .action(async (opts: KubeconfigCommandOptions) => {
    const { runKubeconfig } = await import('./client/kubeconfig.js');
    process.exitCode = await runKubeconfig(opts, process.env, stdio, { mainScript, nodePath: process.execPath });
  });

program
  .command('register')
  .description('puts the gateway in the Keystone catalog (a service and its public endpoint; again: updates them), with admin OS_* / clouds.yaml')
  .requiredOption('--url <url>', 'the https URL tenants reach the gateway at, e.g. https://gateway.example:8443')
  .option('--region <region>', 'the endpoint\'s region; default OS_REGION_NAME (or the cloud\'s region_name), else none')
  .option('--type <type>', 'the catalog service type', 'zun-gateway')
  .option('--name <name>', 'the service name', 'zun-gateway')
  .action(async (opts: RegisterCommandOptions) => {
    const { runRegister } = await import('./client/register.js');
    process.exitCode = await runRegister(opts, process.env, stdio);
  });

program
  .command('docker-config')
  .description('an application credential for the docker CLI and docker-py in DIR/config.json, the CA as DIR/ca.pem; prints the export lines')
  .requiredOption('--output <dir>', 'the directory to write (mode 0700), e.g. ~/.docker/zun-gateway')
  .option('--server <url>', 'the gateway URL; default: its public endpoint in your Keystone catalog (OS_REGION_NAME honoured)')
  .option('--certificate-authority <file>', "the CA that signed the gateway's certificate (written as DIR/ca.pem)")
  .option('--context <name>', 'make a docker context of this name in DIR instead of DOCKER_HOST exports')
  .option('--revoke', 'delete the application credential instead, and take it out of DIR/config.json')
  .option('--service-type <type>', 'the catalog service type the gateway is registered under', 'zun-gateway')
  .action(async (opts: DockerConfigCommandOptions) => {
    const { runDockerConfig } = await import('./client/docker-config.js');
    process.exitCode = await runDockerConfig(opts, process.env, stdio);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (hasCode(err, 'config_invalid')) {
    process.stderr.write(`zun-gateway: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`zun-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
