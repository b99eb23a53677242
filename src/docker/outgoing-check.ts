import { GatewayError } from '../errors.js';

/** Headers no request to the engine may carry: the caller's credentials, impersonation and forwarding claims. */
const NEVER = new Set(['authorization', 'x-auth-token', 'x-subject-token', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip']);

/** Whether the adapter drops a request header before the engine (the same list the final check asserts). */
export const droppedForEngine = (lower: string): boolean => NEVER.has(lower) || lower.startsWith('impersonate-');

/**
 * The final check of a request about to leave for the Docker engine: none of the caller's credentials (the engine
 * trusts whoever reaches it), no impersonation or forwarding claims. A request that breaks it is never sent.
 */
export function assertEngineRequest(headers: readonly string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (droppedForEngine(lower)) throw new GatewayError('outgoing_violation', `request to the Docker engine not sent: it carries ${headers[i]}`);
  }
}
