import { credentialSecret, type RequestCredential } from '../auth/credentials.js';
import { GatewayError } from '../errors.js';

const MIN_SEARCHED_LENGTH = 8;

/**
 * The final check's part that holds for every COE: the caller's credential never leaves the gateway, in any header
 * and in any of the encodings clients put it in (plain, base64url in kubectl's WebSocket subprotocol, base64 in
 * Docker's Basic). The mounts' own checks (k8s/outgoing-check.ts, docker/outgoing-check.ts) assert the rest.
 */
export function assertCredentialStays(headers: readonly string[], credential: RequestCredential): void {
  const secret = credentialSecret(credential);
  // Keystone's tokens and secrets are long random strings; a few characters would also be found by chance in the
  // gateway's own headers (tests use such tokens).
  if (secret.length < MIN_SEARCHED_LENGTH) return;
  const forms = [secret, Buffer.from(secret).toString('base64url')];
  if (credential.kind === 'applicationCredential') forms.push(Buffer.from(`${credential.id}:${credential.secret}`).toString('base64'));
  for (let i = 1; i < headers.length; i += 2) {
    const value = headers[i] as string;
    if (forms.some((form) => value.includes(form))) throw outgoingViolation(`the caller's credential is in the outgoing ${headers[i - 1]} header`);
  }
}

/** A request that must not leave: a 500 for the client, the reason (never a header's value) in the log. */
function outgoingViolation(reason: string): GatewayError {
  return new GatewayError('outgoing_violation', reason);
}
