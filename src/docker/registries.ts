import net from 'node:net';
import { bodyError } from './json-body.js';
import { refused } from './policy.js';

/**
 * Which registries a tenant's pull may reach. The engine fetches from whatever host an image reference names and
 * echoes what it cannot parse, so an unchecked pull is a request from the engine's host to any address a tenant
 * names (its loopback, the cluster's services, a metadata endpoint).
 */

/** Docker's default registry, for references without a registry host (`busybox`, `library/busybox`). */
const DEFAULT_REGISTRY = 'docker.io';

/** The registry part of an image reference, as the docker reference grammar splits it (`splitDockerDomain`). */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash === -1) return DEFAULT_REGISTRY;
  const first = image.slice(0, slash);
  const isDomain = /[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase();
  if (!isDomain) return DEFAULT_REGISTRY;
  return first === 'index.docker.io' ? DEFAULT_REGISTRY : first;
}

/** The host of a registry `host[:port]` or `[v6]:port`, lower case. */
function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']') === -1 ? undefined : registry.indexOf(']')).toLowerCase();
  const colon = registry.lastIndexOf(':');
  return (colon === -1 ? registry : registry.slice(0, colon)).toLowerCase();
}

const INTERNAL = new net.BlockList();
for (const [address, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  INTERNAL.addSubnet(address, prefix, 'ipv4');
}
for (const [address, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  INTERNAL.addSubnet(address, prefix, 'ipv6');
}
// BlockList checks IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the IPv4 subnets above.

/** Names that only mean something inside a site: `localhost`, one-label names, and the usual internal suffixes. */
const INTERNAL_NAME = /(^localhost$|\.localhost$|\.local$|\.internal$|\.svc$|\.cluster\.local$|\.home\.arpa$)/;

/** Why a registry host is refused when no allow-list is configured, or undefined when it may be pulled from. */
function internalReason(host: string): string | undefined {
  const family = net.isIP(host);
  if (family !== 0) return INTERNAL.check(host, family === 4 ? 'ipv4' : 'ipv6') ? 'a loopback, private or link-local address' : undefined;
  // All-numeric labels (2130706433, 127.1, 0x7f.1) are addresses to some resolvers, in forms that hide which.
  if (host.split('.').every((label) => /^(0x[0-9a-f]*|[0-9]+)$/.test(label))) return 'an address not written as a.b.c.d';
  if (!host.includes('.') || INTERNAL_NAME.test(host)) return 'a name inside the engine\'s own network';
  return undefined;
}

/** Refuses a pull of `image` from a registry the tenant may not reach. */
export function checkPullSource(image: string, allowed: readonly string[] | undefined): void {
  checkRegistry(registryOf(image), allowed, 'pulling from');
}

/**
 * Refuses a login (POST /auth) to a registry the tenant may not reach: the engine contacts the registry named in the
 * body's `serveraddress` (`https://index.docker.io/v1/`, `reg.example.com:5000`, or none: Docker Hub).
 */
export function checkLoginServer(serverAddress: unknown, allowed: readonly string[] | undefined): void {
  if (serverAddress !== undefined && serverAddress !== null && typeof serverAddress !== 'string') throw bodyError('serveraddress must be a registry address');
  const host = (serverAddress ?? '').replace(/^https?:\/\//i, '').split('/')[0] ?? '';
  const registry = host === '' || ['index.docker.io', 'registry-1.docker.io', 'docker.io'].includes(host.toLowerCase()) ? DEFAULT_REGISTRY : host;
  checkRegistry(registry, allowed, 'logging in to');
}

function checkRegistry(registry: string, allowed: readonly string[] | undefined, doing: string): void {
  if (allowed !== undefined) {
    if (allowed.some((a) => a.toLowerCase() === registry.toLowerCase())) return;
    throw refused(`${doing} ${registry} is not allowed through the gateway: the registries allowed are ${allowed.join(', ') || 'none'}`);
  }
  const reason = internalReason(hostOf(registry));
  if (reason !== undefined) {
    throw refused(`${doing} ${registry} is not allowed through the gateway: it is ${reason}, which the engine would fetch from on your behalf`);
  }
}
