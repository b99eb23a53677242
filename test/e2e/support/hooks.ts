import { removeLeftoverNetworks } from './docker-cli.js';
import { setSharedGateway, startGateway, type GatewayProcess } from './gateway-process.js';
import { projectIds } from './keystone-admin.js';

/** The e2e gateway's token cache lifetime: short, so the revocation test can wait it out. */
export const E2E_CACHE_TTL_SECONDS = 20;

let gateway: GatewayProcess | undefined;

/** The networks of projects the suites made and deleted, before the run (an earlier run's) and after it (its own). */
async function sweepNetworks(): Promise<void> {
  const kept = await removeLeftoverNetworks(projectIds);
  if (kept.length > 0) console.warn(`e2e: networks of deleted projects the engine would not remove: ${kept.join(', ')}`);
}

/** Root hooks: one gateway child process for the whole e2e run. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await sweepNetworks();
    gateway = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS });
    setSharedGateway(gateway);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(80_000);
    await gateway?.stop();
    setSharedGateway(undefined);
    // Housekeeping for the next run (which sweeps first anyway): a Keystone or engine hiccup here fails no test.
    await sweepNetworks().catch((err: unknown) => console.warn(`e2e: the networks of deleted projects were not swept: ${(err as Error).message}`));
  },
};
