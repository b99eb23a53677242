import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AcceptedScopes, Callers } from '../auth/caller.js';
import { extractCredential, type CredentialRules, type RequestCredential } from '../auth/credentials.js';
import type { AnyIdentity } from '../auth/identity.js';
import type { AuditTrail } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { forwardRequest, type ResponseObserver } from '../proxy/forward.js';
import { forwardUpgrade } from '../proxy/upgrade.js';
import type { Upstream } from '../proxy/upstream.js';
import { exchangeRecorder, type Exchange } from './exchange.js';
import type { CoeMount, Readiness, Signpost } from './mount.js';
import { assertCredentialStays } from './outgoing-check.js';
import type { RequestTarget } from './path.js';
import type { ProjectRateLimiter } from './rate-limit.js';
import { replyFor, sendError, sendErrorOnSocket, type Dialect, type ErrorReply } from './respond.js';
import type { SessionEndReason, Sessions } from './sessions.js';
import { settle } from './settle.js';

/**
 * The one pipeline every COE mount runs, in this order (kube-rbac-proxy's filters, Pinniped's final check):
 *
 *   1 route        what the request is for, from its path: refusals here need no credentials
 *   2 credentials  the token or application credential the request carries            (auth/credentials.ts)
 *   3 identity     who that is, validated at Keystone (cached)                        (auth/caller.ts)
 *   4 rate limit   the caller's project's bucket                                      (rate-limit.ts)
 *   5 admission    whether this caller may, and what exactly goes upstream            (the mount's `admit`)
 *   6 headers      the outgoing header list                                           (the mount's `headers`)
 *   7 final check  what leaves keeps the invariants, or nothing leaves (500)          (the mount's `check`, and
 *                  the caller's credential appears nowhere in it                       outgoing-check.ts)
 *   8 forward      bytes both ways, streamed                                          (proxy/)
 *   9 audit        one record per request or session                                 (exchange.ts)
 *
 * A step that is already decided (a cached token, a provisioned namespace) runs without a promise or a turn of the
 * event loop (settle.ts).
 */

/** What a mount forwards: where, and what replaces the client's body or the bytes after an upgrade's head. */
export interface Forwarding {
  readonly upstream: Upstream;
  /** Path and query below the upstream's base path. */
  readonly path: string;
  /** A checked body that replaces the client's (undefined: the client's own stream, if any). */
  readonly body?: Buffer;
  /** Upgrades: what follows the request (and `body`) on the client's connection; default: the head the server read. */
  readonly head?: Buffer;
  /** A watch, a follow, an event stream: no response-head timeout, counted as an open stream. */
  readonly longLived: boolean;
  readonly responseHeaderTimeoutMs?: number;
  /** Ordinary requests: learns what the upstream answered, and may hold the response's end until it has acted on it. */
  readonly observer?: ResponseObserver;
}

/** An answer the mount makes itself (Docker's `info`, `version`, a volume create checked before it is relayed). */
export interface OwnAnswer {
  readonly answer: { readonly status: number; readonly body: unknown };
}

/** One request as the steps after routing see it. */
export interface Call<R, I> {
  readonly req: IncomingMessage;
  readonly route: R;
  readonly identity: I;
  /** Ordinary requests: the response (its 'close' says the client left). */
  readonly res?: ServerResponse;
  /** Upgrades: the client's connection and the bytes the server read past the request's head. */
  readonly socket?: Duplex;
  readonly head?: Buffer;
}

/** What steps 1 to 5 leave for the steps after them: the call as admitted, and the credential it came with. */
interface CallState<R, I> {
  call?: Call<R, I> | Call<R, undefined>;
  credential?: RequestCredential;
}

/** What the audit record says of a route, known before the caller is. */
export interface RouteFacts {
  /** Which of the mount's upstreams (a Kubernetes cluster) it goes to: a configured name, never the client's words. */
  readonly cluster?: string | undefined;
  readonly namespace?: string | undefined;
  readonly object?: string | undefined;
  readonly longLived: boolean;
}

export interface CoeSteps<R, I extends AnyIdentity, P extends Forwarding> extends Signpost {
  readonly verbatim: boolean;
  /**
   * Which credentials (2) and which token scopes (3) the mount accepts; `accessRules`: tokens of application
   * credentials with access rules, for the requests their rules allow.
   */
  readonly credentials: CredentialRules & { readonly scopes: AcceptedScopes; readonly accessRules?: boolean };
  /** Keystone's URL, named in WWW-Authenticate on a 401 so clients know where to get a token. */
  readonly authUrl: string;
  readonly rateLimiter?: ProjectRateLimiter;
  /** 1. What the request is for; throws for paths refused whoever asks. */
  route(req: IncomingMessage, target: RequestTarget, upgrade: boolean): R;
  facts(route: R): RouteFacts;
  /** A route served without credentials: its plan, skipping 2 to 5. */
  anonymous?(call: Call<R, undefined>): P | Promise<P> | undefined;
  /** 5. Whether this caller may, and the plan (or the mount's own answer). */
  admit(call: Call<R, I>): P | OwnAnswer | Promise<P | OwnAnswer>;
  /** 6. */
  headers(call: Call<R, I | undefined>, plan: P): string[];
  /** 7. Throws an `outgoing_violation` GatewayError when `headers` break one of the mount's invariants. */
  check(headers: readonly string[], call: Call<R, I | undefined>, plan: P): void;
  /** Told of each plan as it leaves (watches are tracked for shutdown). */
  forwarded?(call: Call<R, I | undefined>, plan: P): void;
  /** What a long-lived response says last when the gateway ends it because its token ended (a watch's ERROR event). */
  lastWords?(plan: P, reason: SessionEndReason, contentType: string): string | undefined;
  ready(): Promise<Readiness>;
  /** For /whoami; `base` is the gateway's URL as the caller reached it. */
  describe(identity: AnyIdentity, base: string): Promise<Record<string, unknown>>;
  close(): void;
}

export interface PipelineContext {
  readonly callers: Callers;
  /** Sessions and streams end with the token that opened them. */
  readonly sessions: Sessions;
  /** An upgraded session idle this long is closed (0: never). */
  readonly sessionIdleMs?: number;
  readonly logger: Logger;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
}

/** A mount made of a COE's steps, run in the pipeline's order for every request and upgrade. */
export function mountOf<R, I extends AnyIdentity, P extends Forwarding>(steps: CoeSteps<R, I, P>, context: PipelineContext): CoeMount {
  const { callers, logger, sessions } = context;
  const sessionEnded = (exchange: Exchange, reason: SessionEndReason): void => {
    exchange.endedBecause(`session ended: token ${reason}`);
    context.metrics.sessionsEnded.inc({ coe: steps.name, reason });
  };
  const startExchange = exchangeRecorder({ coe: steps.name, logger, audit: context.audit, metrics: context.metrics });
  context.metrics.registerCoe(steps.name);
  const wwwAuthenticate = `Keystone uri="${steps.authUrl}"`;
  const reply = (err: unknown): ErrorReply => {
    const r = replyFor(err, logger);
    return r.status === 401 ? { ...r, headers: { ...r.headers, 'WWW-Authenticate': wwwAuthenticate } } : r;
  };

  /** 1 to 5: the plan for this request, or the mount's own answer. */
  const admitted = (exchange: Exchange, call: Call<R, undefined>, target: RequestTarget, upgrade: boolean, state: CallState<R, I>): P | OwnAnswer | Promise<P | OwnAnswer> => {
    if (steps.anonymous !== undefined) {
      continued(call.res);
      const anonymousPlan = steps.anonymous(call);
      if (anonymousPlan !== undefined) {
        exchange.describe(steps.facts(call.route));
        state.call = call;
        return anonymousPlan;
      }
    }
    const found = extractCredential(call.req.rawHeaders, upgrade, steps.credentials); // 2
    state.credential = found;
    const request = steps.credentials.accessRules === true ? { method: call.req.method ?? 'GET', path: `/${target.segments.join('/')}` } : undefined;
    const identity = callers.identify(found, steps.credentials.scopes, request) as I | Promise<I>; // 3
    const next = (who: I): P | OwnAnswer | Promise<P | OwnAnswer> => {
      // What the route names is recorded once the caller is known: nothing is claimed of an unauthenticated request.
      exchange.identity = who;
      exchange.describe(steps.facts(call.route));
      steps.rateLimiter?.take(who); // 4
      continued(call.res);
      const admittedCall: Call<R, I> = { ...call, identity: who };
      state.call = admittedCall;
      return steps.admit(admittedCall); // 5
    };
    return identity instanceof Promise ? identity.then(next) : next(identity);
  };

  /** 6 and 7: the outgoing headers, checked. */
  const outgoing = (call: Call<R, I | undefined>, plan: P, credential: RequestCredential | undefined): string[] => {
    const headers = steps.headers(call, plan);
    steps.check(headers, call, plan);
    if (credential !== undefined) assertCredentialStays(headers, credential);
    return headers;
  };

  return {
    name: steps.name,
    dialect: steps.dialect,
    isApiRoot: steps.isApiRoot,
    prefixHint: steps.prefixHint,
    verbatim: steps.verbatim,

    handleRequest(req, res, target) {
      const exchange = startExchange(req);
      exchange.observe(res);
      const state: CallState<R, I> = {};
      settle(
        () => {
          const route = steps.route(req, target, false); // 1
          return admitted(exchange, { req, route, identity: undefined, res }, target, false, state);
        },
        (plan) => {
          if ('answer' in plan) {
            relayJson(res, plan.answer.status, plan.answer.body);
            return;
          }
          const forwardCall = state.call as Call<R, I | undefined>;
          const headers = outgoing(forwardCall, plan, state.credential);
          steps.forwarded?.(forwardCall, plan);
          // A stream the gateway may have to end when its token ends (ordinary requests need none of this: an
          // AbortController and its listener cost each about 3 % of the gateway's CPU, docs/performance.md step 12).
          const stop = plan.longLived && forwardCall.identity !== undefined ? new AbortController() : undefined;
          let contentType = '';
          if (stop !== undefined && forwardCall.identity !== undefined) {
            const untrack = sessions.track(forwardCall.identity, (reason) => {
              sessionEnded(exchange, reason);
              stop.abort();
              if (res.headersSent) res.end(steps.lastWords?.(plan, reason, contentType));
              else res.destroy();
            });
            res.once('close', untrack);
          }
          forwardRequest(req, res, {
            signal: stop?.signal,
            upstream: plan.upstream,
            path: plan.path,
            headers,
            body: plan.body,
            bytes: exchange.bytes,
            longLived: plan.longLived,
            responseHeaderTimeoutMs: plan.responseHeaderTimeoutMs,
            observer: plan.observer,
            onResponse: (status, type) => {
              contentType = type ?? '';
              exchange.answered(status);
            },
            onError: (err) => exchange.upstreamFailed(err, sendError(res, steps.dialect, reply(err))),
          }); // 8
          exchange.sentUpstream();
        },
        (err) => exchange.refuseWith(reply(err), (r) => sendError(res, steps.dialect, r)),
      );
    },

    handleUpgrade(req, socket, head, target) {
      const exchange = startExchange(req);
      const hooks = exchange.observeUpgrade(socket);
      const state: CallState<R, I> = {};
      settle(
        () => {
          const route = steps.route(req, target, true); // 1
          return admitted(exchange, { req, route, identity: undefined, socket, head }, target, true, state);
        },
        (plan) => {
          if ('answer' in plan) throw new Error(`${steps.name}: an upgrade cannot be answered by the mount itself`);
          const forwardCall = state.call as Call<R, I | undefined>;
          const headers = outgoing(forwardCall, plan, state.credential);
          steps.forwarded?.(forwardCall, plan);
          const identity = forwardCall.identity;
          forwardUpgrade(req, socket, plan.head ?? head, {
            upstream: plan.upstream,
            path: plan.path,
            headers,
            ...(plan.body !== undefined ? { body: plan.body } : {}),
            onError: (err) => exchange.upstreamFailed(err, sendErrorOnSocket(socket, steps.dialect, reply(err))),
            ...hooks,
            ...(context.sessionIdleMs !== undefined && context.sessionIdleMs > 0
              ? { idle: { ms: context.sessionIdleMs, onIdle: () => exchange.endedBecause('session ended: idle') } }
              : {}),
            // An upgraded session lives no longer than its token.
            onUpgraded: () => {
              const session = hooks.onUpgraded();
              const untrack = identity === undefined ? () => undefined : sessions.track(identity, (reason) => {
                sessionEnded(exchange, reason);
                socket.destroy();
              });
              return {
                onClose: () => {
                  untrack();
                  session.onClose();
                },
              };
            },
          }); // 8
          exchange.sentUpstream();
        },
        (err) => exchange.refuseWith(reply(err), (r) => sendErrorOnSocket(socket, steps.dialect, r)),
      );
    },

    ready: () => steps.ready(),
    describe: (identity, base) => steps.describe(identity, base),
    close: () => steps.close(),
  };
}

/**
 * A client that sent `Expect: 100-continue` waits for the go-ahead before its body: it is given once the caller is
 * known and within its rate, so a request refused before that never sends its body (the server's 'checkContinue'
 * hands such requests to the dispatcher instead of answering 100 at once).
 */
function continued(res: ServerResponse | undefined): ServerResponse | undefined {
  if (res !== undefined && !res.headersSent && /^100-continue$/i.test(String(res.req.headers.expect ?? '').trim())) res.writeContinue();
  return res;
}

/** An answer the mount composed or checked itself, relayed as JSON. */
function relayJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
