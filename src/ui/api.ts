import { answerMessage } from './format.js';

/** An answer other than success, with what the gateway (or the engine behind it) said. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Setup {
  /** The gateway's URL for kubectl and docker; null when it cannot be given (plain HTTP without ui.publicUrl). */
  readonly server: string | null;
  readonly certificateAuthority: boolean;
  /** The Keystone URL tenants use (OS_AUTH_URL). */
  readonly keystoneUrl: string;
  readonly engines: readonly string[];
}

export type SignInForm =
  | { method: 'password'; username: string; password: string; project: string; domain: string }
  | { method: 'application_credential'; id: string; secret: string };

/**
 * Every call is same-origin, carries the token in X-Auth-Token (never in a URL), and keeps nothing in the browser's
 * caches (`no-store`, and the gateway says so too).
 */
async function call(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  if (init.token !== undefined) headers.set('X-Auth-Token', init.token);
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
  } catch {
    throw new GatewayError(0, 'the gateway did not answer (network error)');
  }
  if (res.ok) return res;
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  throw new GatewayError(res.status, answerMessage(res.status, body));
}

export async function setup(): Promise<Setup> {
  return (await (await call('/ui/api/setup')).json()) as Setup;
}

export async function signIn(form: SignInForm): Promise<{ token: string; expiresAt: string }> {
  const res = await call('/ui/api/sign-in', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(form) });
  return (await res.json()) as { token: string; expiresAt: string };
}

export async function signOut(token: string): Promise<void> {
  await call('/ui/api/sign-out', { method: 'POST', token });
}

export async function getJson(path: string, token: string): Promise<unknown> {
  return (await call(path, { token })).json();
}

export async function getBlob(path: string, token: string): Promise<Blob> {
  return (await call(path, { token })).blob();
}
