import { isCertificateRefusal, systemCode } from '../errors.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';
import { field, isObject, type Json } from './json-body.js';
import { OWNER_LABEL } from './ownership.js';

export interface EngineHealth {
  readonly ok: boolean;
  readonly detail: string;
  readonly blocking?: boolean;
  /** What keeps tenants apart on this engine that the gateway can see is missing, and what it cannot see. */
  readonly warnings?: readonly string[];
}

const FIREWALL_UNSEEN =
  "the gateway cannot see the engine host's firewall: unless the host drops traffic from the engine's bridges to itself and Docker runs with iptables on, tenant containers reach the host's ports and other projects' containers by address (docs/operations.md, \"Keeping tenant containers away from the host and each other\"); once applied, set docker.isolationRulesApplied: true";

/**
 * What the engine tells about tenant isolation (issue 24): bridge traffic invisible to iptables (no isolation between
 * networks is possible), project networks with IPv6 (Docker 20.10 isolates IPv6 between networks only with its
 * experimental ip6tables), and, unless the operator says the host rules are applied, that nothing the gateway can see
 * keeps tenants from the host.
 */
export async function isolationWarnings(engine: Upstream, rulesApplied: boolean): Promise<string[]> {
  const warnings: string[] = [];
  const [info, networks] = await Promise.all([
    engineJson(engine, 'GET', '/info'),
    engineJson(engine, 'GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ label: [OWNER_LABEL] }))}`),
  ]);
  if (field(info.body as Json, 'BridgeNfIptables') === false) {
    warnings.push("bridge-nf-call-iptables is off on the engine's host: iptables does not see traffic on the bridges, so Docker cannot keep projects' networks apart (sysctl net.bridge.bridge-nf-call-iptables=1)");
  }
  if (Array.isArray(networks.body)) {
    const ipv6 = networks.body.filter((n) => isObject(n as Json) && field(n as Json, 'EnableIPv6') === true).map((n) => String(field(n as Json, 'Name')));
    if (ipv6.length > 0) warnings.push(`project networks with IPv6 (${ipv6.slice(0, 5).join(', ')}${ipv6.length > 5 ? ', ...' : ''}): Docker does not isolate IPv6 between networks without ip6tables`);
  }
  if (!rulesApplied) warnings.push(FIREWALL_UNSEEN);
  return warnings;
}

/** GET /_ping: the engine answers (a refused client certificate or CA is the gateway's configuration: blocking). */
export async function engineHealth(engine: Upstream, rulesApplied: boolean): Promise<EngineHealth> {
  try {
    const answer = await engineJson(engine, 'GET', '/_ping');
    if (answer.status !== 200) return { ok: false, detail: `engine answered HTTP ${answer.status}` };
    const warnings = await isolationWarnings(engine, rulesApplied).catch(() => []);
    return { ok: true, detail: 'engine answers', ...(warnings.length > 0 ? { warnings } : {}) };
  } catch (err) {
    const code = systemCode(err);
    return { ok: false, detail: `engine unreachable (${code !== '' ? code : (err as Error).message})`, ...(isCertificateRefusal(err) ? { blocking: true } : {}) };
  }
}
