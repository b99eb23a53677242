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
}

/** One container engine's endpoint (`/k8s`, later `/docker`): the gateway hands it everything under its prefix. */
export interface CoeMount {
  /** The first path segment this mount serves. */
  readonly name: string;
  readonly dialect: Dialect;
  /** `target.rest` is the raw path and query below the prefix, as the client sent them; segments are decoded. */
  handleRequest(req: IncomingMessage, res: ServerResponse, target: RequestTarget): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget): void;
  ready(): Promise<Readiness>;
  /** What this COE maps the caller to (for /whoami), e.g. the Kubernetes namespace. */
  describe(identity: AnyIdentity): Promise<Record<string, unknown>>;
  close(): void;
}

/** The upstream path for what follows the mount prefix: `/k8s` -> `/`, `/k8s?x` -> `/?x`. */
export function upstreamPath(rest: string): string {
  return rest.startsWith('/') ? rest : `/${rest}`;
}
