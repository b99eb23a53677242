import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AnyIdentity } from '../auth/identity.js';
import type { RequestTarget } from './path.js';
import type { Dialect } from './respond.js';

export interface Readiness {
  readonly ok: boolean;
  readonly detail: string;
  /**
   * The failure is this gateway's own configuration being refused (its credentials, its CA), which no other replica
   * shares and a rollout must not pass: /readyz answers 503. Without it a failed check is reported but the gateway
   * stays ready: an upstream that is down is down for every replica, and the other COE and cached tokens still work.
   */
  readonly blocking?: boolean;
  /** Further facts for the /readyz body (warnings an operator should act on). */
  readonly warnings?: readonly string[];
  /** A mount with several upstreams (Kubernetes clusters): each one's check, by name. */
  readonly upstreams?: Readonly<Record<string, Readiness>>;
}

/**
 * What the dispatcher knows of a COE, served or not: its prefix, the first path segments of its API, and what to tell
 * a client that sent one of them without the prefix (at the root, or below a mount that forwards every path).
 */
export interface Signpost {
  /** The first path segment this COE is served at. */
  readonly name: string;
  readonly dialect: Dialect;
  /** Whether a first path segment is one of this COE's API roots (`api`, `v1.41` ...). */
  readonly isApiRoot: (segment: string) => boolean;
  readonly prefixHint: string;
}

/**
 * One container engine's endpoint (`/k8s`, `/docker`): the gateway hands it everything under its prefix. A mount
 * declares what the dispatcher needs to know of it; no shared file names a COE.
 */
export interface CoeMount extends Signpost {
  /**
   * The mount forwards every path below it as it is (no allow-list of its own), so another COE's API path sent here
   * is answered with that COE's hint rather than forwarded.
   */
  readonly verbatim: boolean;
  /** `target.rest` is the raw path and query below the prefix, as the client sent them; segments are decoded. */
  handleRequest(req: IncomingMessage, res: ServerResponse, target: RequestTarget): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget): void;
  ready(): Promise<Readiness>;
  /**
   * What this COE maps the caller to (for /whoami), e.g. the Kubernetes namespace and the clusters with their URLs;
   * `base` is the gateway's URL as the caller reached it (scheme and host, no path).
   */
  describe(identity: AnyIdentity, base: string): Promise<Record<string, unknown>>;
  close(): void;
}

/** The upstream path for what follows the mount prefix: `/k8s` -> `/`, `/k8s?x` -> `/?x`. */
export function upstreamPath(rest: string): string {
  return rest.startsWith('/') ? rest : `/${rest}`;
}
