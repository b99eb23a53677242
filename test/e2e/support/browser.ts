import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (the e2e set-up installs it, like the other real systems). */
export const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

/**
 * base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium's --ignore-certificate-errors-spki-list
 * takes. The browser then accepts exactly the gateway's key (its certificate is signed by the e2e CA, which the
 * browser does not know) and still refuses any other certificate error.
 */
export function spkiPin(certFile: string): string {
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * A headless chromium with a fresh profile, nothing of its own on the network (no sync, updates, background
 * requests, QUIC), driven by playwright-core. A missing chromium fails the run: e2e tests are never skipped.
 */
export async function launchBrowser(options: { trustCertificate: string; viewport?: { width: number; height: number } }): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no chromium at ${CHROMIUM}: test/e2e/env/up installs it (apt-get install --no-install-recommends chromium)`);
  }
  const profile = mkdtempSync(path.join(os.tmpdir(), 'zgw-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiPin(options.trustCertificate)}`,
    ],
    acceptDownloads: true,
    viewport: options.viewport ?? { width: 1280, height: 900 },
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
