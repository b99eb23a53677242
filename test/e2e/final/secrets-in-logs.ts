import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { e2eEnv } from '../support/env.js';
import { sharedGateway } from '../support/gateway-process.js';
import { rememberedSecrets } from '../support/secrets.js';

/** Tokens the kubectl credential plugin cached for the users the specs made (their homes are temporary folders). */
function pluginTokens(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 6) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, depth + 1);
      else if (entry.isFile() && statSync(full).size < 1_000_000) {
        for (const m of readFileSync(full, 'utf8').matchAll(/"token"\s*:\s*"([^"]{16,})"/g)) found.push(m[1] as string);
      }
    }
  };
  for (const entry of readdirSync(os.tmpdir())) {
    if (/^zgw-(user|clouds)-/.test(entry)) walk(path.join(os.tmpdir(), entry), 0);
  }
  return found;
}

function since(file: string, offset: number): string {
  return existsSync(file) ? readFileSync(file).subarray(offset).toString('utf8') : '';
}

/**
 * Runs after every other spec (it is the last entry of .mocharc.e2e.json): stops the e2e gateway so everything it
 * logged is on disk, then looks for every secret the run used in what this run appended to its log and audit file.
 */
describe('secrets never reach the logs (after the whole e2e run)', function () {
  it('no password, token or application credential secret appears in the gateway log or the audit trail', async function () {
    this.timeout(30_000);
    const gw = sharedGateway();
    await gw.stop();
    const log = since(gw.logFile, gw.logOffset);
    const audit = since(gw.auditFile, gw.auditOffset);
    assert.ok(log.split('\n').length > 100, `the run logged (${gw.logFile})`);
    assert.ok(audit.split('\n').length > 100, `the run audited (${gw.auditFile})`);
    const secrets: Array<readonly [string, string]> = Object.entries(e2eEnv().passwords).map(([who, p]) => [`${who}'s password`, p]);
    for (const s of rememberedSecrets()) secrets.push(['a token or secret the specs obtained', s]);
    for (const s of pluginTokens()) secrets.push(['a token the credential plugin obtained', s]);
    assert.ok(secrets.length > 20, `only ${secrets.length} secrets collected: the check would prove little`);
    for (const [what, secret] of secrets) {
      assert.ok(!log.includes(secret), `${what} appears in ${gw.logFile}`);
      assert.ok(!audit.includes(secret), `${what} appears in ${gw.auditFile}`);
    }
  });
});
