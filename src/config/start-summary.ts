import type { Discovery } from './discover.js';

export interface StartSummaryInput {
  readonly discovery: Discovery;
  /** The gateway's URL, with the port it actually listens on. */
  readonly url: string;
  /** True when the CA was made at this start (tenants who had the old one must take the new one). */
  readonly createdCa: boolean;
  /** How this machine runs zun-gateway: `zun-gateway`, or node and the script of a clone. */
  readonly self: string;
  /** The catalog service type, when not the default (ZUN_GATEWAY_SERVICE_TYPE). */
  readonly serviceType?: string | undefined;
}

/** A path or URL as a shell word. */
function sh(word: string): string {
  return /^[\w@%+=:,./~-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * What a zero-configuration gateway says when it starts, for a person (stderr, beside the JSON log on stdout): what
 * it serves and from where, each thing not found, the CA to hand out, and the commands the operator and tenants run
 * next, exactly.
 */
export function startSummary(input: StartSummaryInput): string {
  const { discovery, url, self } = input;
  const { origins } = discovery;
  const ca = sh(discovery.tls.ca);
  const lines = [
    'zun-gateway: no configuration file (--config, ZUN_GATEWAY_CONFIG or ./gateway.yaml): serving what this machine has.',
    `  Keystone   ${origins.keystone}`,
    ...(origins.k8s !== undefined ? [`  /k8s       ${origins.k8s}`] : []),
    ...(origins.docker !== undefined ? [`  /docker    ${origins.docker}`] : []),
    ...discovery.notFound.map((line) => `  not found: ${line}`),
    `  listening  ${url} (this machine only; ZUN_GATEWAY_PORT sets the port)`,
    `  CA         ${discovery.tls.ca} (${input.createdCa ? 'made now' : 'made at an earlier start and kept'}): tenants trust the gateway with it`,
  ];
  if (origins.k8s !== undefined) {
    lines.push("  note: tenants' pods are checked only once the apiserver calls the gateway's webhook (README \"Pods without the Helm chart\")");
  }
  lines.push(
    'Operator, once, with admin credentials: list the gateway in the Keystone catalog, so that tenants need no URL:',
    `  ${self} register --url ${sh(url)}${input.serviceType !== undefined && input.serviceType !== 'zun-gateway' ? ` --type ${input.serviceType}` : ''}`,
    'Tenants, with their usual OS_CLOUD or OS_* credentials:',
  );
  if (origins.k8s !== undefined) {
    lines.push(
      `  ${self} kubeconfig --server ${sh(url)} --certificate-authority ${ca} --output ~/.kube/zun-gateway`,
      '  export KUBECONFIG=~/.kube/zun-gateway',
    );
  }
  if (origins.docker !== undefined) {
    lines.push(`  ${self} docker-config --server ${sh(url)} --certificate-authority ${ca} --output ~/.docker/zun-gateway   # then the export line it prints`);
  }
  lines.push(`This configuration as a file to edit: ${self} init`);
  return `${lines.join('\n')}\n`;
}
