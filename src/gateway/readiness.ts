import type { KeystoneClient } from '../auth/keystone-client.js';
import type { ServiceTokenProvider } from '../auth/service-token.js';
import { hasCode } from '../errors.js';
import type { CoeMount, Readiness } from '../routes/mount.js';
import { realDelay, type Delay } from './delay.js';

/** Each readiness check answers within this, so /readyz answers inside the probe's timeout (the chart's: 3 s). */
const READINESS_CHECK_MS = 2000;

function answeredWithin(check: Promise<Readiness>, delay: Delay): Promise<Readiness> {
  let cancel: (() => void) | undefined;
  const late = new Promise<Readiness>((resolve) => {
    cancel = delay(READINESS_CHECK_MS, () => resolve({ ok: false, detail: `no answer within ${READINESS_CHECK_MS / 1000} s` }));
  });
  return Promise.race([check, late]).finally(() => cancel?.());
}

/**
 * Keystone answers, and accepts the gateway's own service credentials: a gateway whose password is wrong cannot
 * check a single new token, so it is not ready (and says why) rather than failing each tenant with a 503.
 */
export async function keystoneReadiness(keystone: KeystoneClient, serviceToken: ServiceTokenProvider): Promise<Readiness> {
  if (!(await keystone.ping())) return { ok: false, detail: 'unreachable' };
  try {
    await serviceToken.get();
  } catch (err) {
    if (hasCode(err, 'keystone_refuses_gateway')) return { ok: false, detail: `reachable, but ${err.message}`, blocking: true };
  }
  return { ok: true, detail: 'reachable' };
}

/** Every check of /readyz, Keystone's and each mount's, run at once, each answering within READINESS_CHECK_MS. */
export async function readinessChecks(keystone: () => Promise<Readiness>, mounts: readonly CoeMount[], delay: Delay = realDelay): Promise<Record<string, Readiness>> {
  const named: Array<[string, Promise<Readiness>]> = [['keystone', keystone()], ...mounts.map((m) => [m.name, m.ready()] as [string, Promise<Readiness>])];
  return Object.fromEntries(await Promise.all(named.map(async ([name, check]) => [name, await answeredWithin(check, delay)] as const)));
}
