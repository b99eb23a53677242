import { setSharedGateway, startGateway, type GatewayProcess } from './gateway-process.js';

/** The e2e gateway's token cache lifetime: short, so the revocation test can wait it out. */
export const E2E_CACHE_TTL_SECONDS = 20;

let gateway: GatewayProcess | undefined;

/** Root hooks: one gateway child process for the whole e2e run. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    gateway = await startGateway({ cacheTtlSeconds: E2E_CACHE_TTL_SECONDS });
    setSharedGateway(gateway);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(20_000);
    await gateway?.stop();
    setSharedGateway(undefined);
  },
};
