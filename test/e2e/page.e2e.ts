import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Locator, Page, Response } from 'playwright-core';
import { parse } from 'yaml';
import { launchBrowser, type Browser } from './support/browser.js';
import { DockerUser, engineDocker } from './support/docker-cli.js';
import { e2eEnv } from './support/env.js';
import { httpsGet, sharedGateway, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { issueToken, type E2eUser, type IssuedToken } from './support/keystone.js';
import { adminKubectl, kubectl, mustSucceed, tenantKubeconfig } from './support/kubectl.js';
import { run } from './support/run.js';
import { rememberSecret } from './support/secrets.js';

const MAIN = path.resolve('dist/src/main.js');
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown }>;
}

/** axe-core from npm, put into the page by the driver (the page's CSP allows no script from elsewhere). */
async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string | null; help: string; targets: unknown[] }>> {
  await page.evaluate(AXE_SOURCE);
  // Expressions as text: they run in the browser, and this project's TypeScript has no DOM types.
  const violations = (await page.evaluate('axe.run(document).then((r) => r.violations)')) as AxeViolation[];
  return violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target) }));
}

function screenshotDir(): string {
  const dir = path.join(e2eEnv().logDir, 'page');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The sign-in answer's token, read off the network as the page receives it (for checks behind the page's back). */
async function tokenFrom(response: Response): Promise<string> {
  return rememberSecret(((await response.json()) as { token: string }).token);
}

/** Waits for a part of the page to show; when it does not, the error says what the page showed instead. */
async function shown(locator: Locator): Promise<void> {
  try {
    await locator.waitFor();
  } catch (err) {
    const said = await locator.page().locator('main').innerText().catch(() => '(unreadable)');
    throw new Error(`${(err as Error).message.split('\n')[0]}\nthe page showed:\n${said}`);
  }
}

/** Fills the form by its labels and presses "Sign in"; resolves with the relay's answer. */
async function signIn(page: Page, user: E2eUser, project: string, password = e2eEnv().passwords[user]): Promise<Response> {
  // By the labels a user reads (the form's own fields, not the radio buttons or sections named alike).
  const field = (name: string) => page.getByRole('textbox', { name, exact: true });
  await field('User name').fill(user);
  await field('Password').fill(password);
  await field('Project').fill(project);
  await field('Domain').fill('Default');
  const answer = page.waitForResponse((r) => r.url().endsWith('/ui/api/sign-in'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  return answer;
}

describe("the tenants' page in a real browser (Debian chromium via playwright-core; real Keystone, apiserver, kubelet, dockerd, kubectl)", function () {
  this.timeout(180_000);
  const suffix = randomBytes(3).toString('hex');
  const names = { alicePod: `page-a-${suffix}`, bobPod: `page-b-${suffix}`, aliceBox: `page-a-${suffix}`, aliceLater: `page-a2-${suffix}`, bobBox: `page-b-${suffix}` };
  let browser: Browser;
  let gw: GatewayProcess;
  let alice: IssuedToken;
  let bob: IssuedToken;
  let aliceDocker: DockerUser;
  let bobDocker: DockerUser;

  const podManifest = (name: string): string => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: ${e2eEnv().busyboxImage}, imagePullPolicy: Never, command: [sleep, '3600']}
`;

  before(async function () {
    this.timeout(180_000);
    gw = sharedGateway();
    alice = await issueToken('alice', 'alpha');
    bob = await issueToken('bob', 'beta');
    // What each tenant made with their usual tools, through the gateway, before opening the page.
    for (const [token, ns, pod] of [[alice, 'os-alpha', names.alicePod], [bob, 'os-beta', names.bobPod]] as const) {
      const config = tenantKubeconfig(gw.url, token.token, ns);
      await mustSucceed(kubectl(config, ['apply', '-f', '-'], { input: podManifest(pod) }), `create ${pod}`);
      await mustSucceed(kubectl(config, ['wait', '--for=condition=Ready', `pod/${pod}`, '--timeout=120s'], { timeoutMs: 150_000 }), `${pod} ready`);
    }
    aliceDocker = new DockerUser(gw.port, { 'X-Auth-Token': alice.token });
    bobDocker = new DockerUser(gw.port, { 'X-Auth-Token': bob.token });
    await mustSucceed(aliceDocker.docker(['run', '-d', '--name', names.aliceBox, e2eEnv().busyboxImage, 'sleep', '3600']), 'alice docker run');
    await mustSucceed(bobDocker.docker(['run', '-d', '--name', names.bobBox, e2eEnv().busyboxImage, 'sleep', '3600']), 'bob docker run');
    browser = await launchBrowser({ trustCertificate: e2eEnv().tlsCert });
  });

  after(async function () {
    this.timeout(60_000);
    await browser?.close();
    // Behind the gateway's back, as the cluster's and the engine's owner: cleaning up must not need Keystone.
    await adminKubectl(['delete', 'pod', '-n', 'os-alpha', names.alicePod, '--wait=false', '--ignore-not-found']);
    await adminKubectl(['delete', 'pod', '-n', 'os-beta', names.bobPod, '--wait=false', '--ignore-not-found']);
    await engineDocker(['rm', '-f', names.aliceBox, names.aliceLater, names.bobBox]);
  });

  it("GET / is the page for a browser and the JSON discovery for API clients, with the page's security headers", async () => {
    const page = await browser.context.newPage();
    try {
      const res = await page.goto(gw.url);
      assert.ok(res !== null);
      assert.equal(res.status(), 200);
      const headers = res.headers();
      assert.match(headers['content-type'] ?? '', /^text\/html/);
      assert.equal(
        headers['content-security-policy'],
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
      );
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.equal(headers['referrer-policy'], 'no-referrer');
      assert.equal(headers['x-content-type-options'], 'nosniff');
      assert.equal(await page.title(), 'zun-gateway: kubectl and docker for your OpenStack project');
      const api = await httpsGet(`${gw.url}/`);
      assert.equal(api?.status, 200);
      assert.equal((JSON.parse(api?.body ?? '{}') as { name?: string }).name, 'zun-gateway');
    } finally {
      await page.close();
    }
  });

  it('the CSP is in force: a script injected into the page does not run, and another site cannot frame the page', async () => {
    const page = await browser.context.newPage();
    const framer = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>framer</title><iframe src="${gw.url}/" title="gateway"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
    try {
      await page.goto(gw.url);
      const blocked = await page.evaluate(`new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
        const s = document.createElement('script');
        s.textContent = 'window.injected = true;';
        document.body.append(s);
      })`);
      assert.equal(blocked, 'script-src-elem');
      assert.equal(await page.evaluate('window.injected'), undefined);

      const refusal = page.waitForEvent('console', { predicate: (m) => m.text().includes('frame-ancestors'), timeout: 15_000 });
      await page.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
      assert.match((await refusal).text(), /frame-ancestors 'none'/);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame !== undefined, 'no frame');
      assert.equal(await frame.locator('#sign-in-form').count(), 0, 'the framed page rendered');
    } finally {
      await page.close();
      framer.close();
    }
  });

  it("a wrong password shows Keystone's refusal in plain words, and nothing of the project", async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(gw.url);
      const answer = await signIn(page, 'alice', 'alpha', 'not-the-password');
      assert.equal(answer.status(), 401);
      const error = page.locator('#sign-in-error');
      await error.waitFor({ state: 'visible' });
      assert.match(
        (await error.textContent()) ?? '',
        /^Keystone refused the sign-in \(HTTP 401: The request you have made requires authentication\.\): check the user name, password, project and domain/,
      );
      assert.equal(await page.locator('#project-section').isVisible(), false);
      assert.equal(await page.locator('#setup-section').isVisible(), false);
      const text = (await page.locator('main').textContent()) ?? '';
      assert.ok(!text.includes('os-alpha') && !text.includes(names.alicePod), text);
      await page.screenshot({ path: path.join(screenshotDir(), 'wrong-password.png') });
    } finally {
      await page.close();
    }
  });

  it('alice signs in and sees who she is, her namespace, her pod and her container; Refresh shows a container made since', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(gw.url);
      const answer = await signIn(page, 'alice', 'alpha');
      assert.equal(answer.status(), 200);
      await shown(page.locator('#pods table'));
      await shown(page.locator('#containers table'));
      assert.equal(await page.locator('#who-user').textContent(), 'alice (domain Default)');
      assert.equal(await page.locator('#who-project').textContent(), 'alpha (domain Default)');
      assert.match((await page.locator('#who-roles').textContent()) ?? '', /\bmember\b/);
      assert.match((await page.locator('#who-expires').textContent()) ?? '', /\(in \d+ (minutes|hours)\)$/);
      assert.equal(await page.locator('#who-namespace').textContent(), 'os-alpha');
      const pod = page.locator('#pods tr', { hasText: names.alicePod });
      const [podName, phase, restarts, age] = await pod.locator('td').allTextContents();
      assert.deepEqual([podName, phase, restarts], [names.alicePod, 'Running', '0']);
      assert.match(age ?? '', /^\d+[smhd]$/);
      const box = page.locator('#containers tr', { hasText: names.aliceBox });
      assert.deepEqual(await box.locator('td').allTextContents(), [names.aliceBox, e2eEnv().busyboxImage, 'running']);
      // The token stays in the tab's memory: nothing in storage or cookies.
      assert.deepEqual(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]'), [0, 0, '']);
      assert.deepEqual(await browser.context.cookies(), []);

      await mustSucceed(aliceDocker.docker(['create', '--name', names.aliceLater, e2eEnv().busyboxImage, 'true']), 'docker create');
      await page.getByRole('button', { name: 'Refresh' }).click();
      await shown(page.locator('#containers tr', { hasText: names.aliceLater }));
      assert.deepEqual(await page.locator('#containers tr', { hasText: names.aliceLater }).locator('td').allTextContents(), [names.aliceLater, e2eEnv().busyboxImage, 'created']);
      await page.screenshot({ path: path.join(screenshotDir(), 'alice.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it("Get set up, as a user follows it: the kubeconfig (no secret in it) and the copied kubectl commands list alice's pods; the copied docker commands list her containers", async () => {
    const page = await browser.context.newPage();
    // The user's machine: a home with ~/Downloads, the zun-gateway command and kubectl on the PATH.
    const home = mkdtempSync(path.join(os.tmpdir(), 'zgw-page-user-'));
    const downloads = path.join(home, 'Downloads');
    const bin = path.join(home, 'bin');
    mkdirSync(downloads);
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'zun-gateway'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
    chmodSync(path.join(bin, 'zun-gateway'), 0o755);
    writeFileSync(path.join(bin, 'kubectl'), `#!/bin/sh\nexec "${e2eEnv().kubectl}" "$@"\n`);
    chmodSync(path.join(bin, 'kubectl'), 0o755);
    const shell = (script: string, input?: string) =>
      run('bash', ['--norc', '--noprofile', '-euo', 'pipefail', '-c', script], {
        env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: home, OS_AUTH_URL: e2eEnv().keystoneUrl, OS_USERNAME: 'alice', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'alpha', OS_PROJECT_DOMAIN_NAME: 'Default', OS_PASSWORD: e2eEnv().passwords.alice },
        ...(input !== undefined ? { input } : {}),
        timeoutMs: 120_000,
      });
    const copied = async (label: string): Promise<string> => {
      await page.getByRole('button', { name: label }).click();
      await shown(page.locator('#copy-status', { hasText: 'Copied to the clipboard.' }));
      return (await page.evaluate('navigator.clipboard.readText()')) as string;
    };
    try {
      await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
      await page.goto(gw.url);
      const token = await tokenFrom(await signIn(page, 'alice', 'alpha'));
      await shown(page.locator('#pods table'));
      for (const [control, name] of [[page.getByRole('button', { name: 'Download kubeconfig' }), 'zun-gateway.kubeconfig'], [page.getByRole('link', { name: "Download the gateway's CA (ca.pem)" }), 'ca.pem']] as const) {
        const [download] = await Promise.all([page.waitForEvent('download'), control.click()]);
        assert.equal(download.suggestedFilename(), name);
        await download.saveAs(path.join(downloads, name));
      }
      const text = readFileSync(path.join(downloads, 'zun-gateway.kubeconfig'), 'utf8');
      assert.ok(!text.includes(token) && !text.includes(e2eEnv().passwords.alice), 'the kubeconfig holds a secret');
      const doc = parse(text) as { clusters: Array<{ cluster: Record<string, string> }>; contexts: Array<{ context: { namespace?: string } }> };
      assert.equal(doc.clusters[0]?.cluster.server, `${gw.url}/k8s`);
      assert.equal(Buffer.from(doc.clusters[0]?.cluster['certificate-authority-data'] ?? '', 'base64').toString('utf8'), readFileSync(e2eEnv().tlsCa, 'utf8'));
      assert.equal(doc.contexts[0]?.context.namespace, 'os-alpha');
      assert.equal(readFileSync(path.join(downloads, 'ca.pem'), 'utf8'), readFileSync(e2eEnv().tlsCa, 'utf8'));

      // The kubectl commands as copied, the password typed at their prompt (the shell has no OS_PASSWORD of its own).
      const kubectlLines = await copied('Copy the commands for kubectl');
      assert.match(kubectlLines, /^export OS_USERNAME=alice OS_USER_DOMAIN_NAME=Default$/m);
      const pods = await mustSucceed(shell(`unset OS_PASSWORD\n${kubectlLines}`, `${e2eEnv().passwords.alice}\n`), 'the copied kubectl commands');
      assert.match(pods, new RegExp(`^${names.alicePod}\\s+1/1\\s+Running`, 'm'));
      assert.ok(!pods.includes(names.bobPod), pods);

      // The docker commands as copied: an application credential of alice's, exchanged by the gateway.
      await shell('openstack application credential delete zun-docker >/dev/null 2>&1 || true');
      try {
        const dockerLines = await copied('Copy the commands for the docker CLI');
        const ps = await mustSucceed(shell(dockerLines), 'the copied docker commands');
        // Its secret is one the final spec must not find in the gateway's log or audit trail.
        const written = JSON.parse(readFileSync(path.join(home, '.docker', 'zun', 'config.json'), 'utf8')) as { HttpHeaders: { Authorization: string } };
        rememberSecret(Buffer.from(written.HttpHeaders.Authorization.replace(/^Basic /, ''), 'base64').toString('utf8').split(':')[1]);
        assert.match(ps, new RegExp(`\\s${names.aliceBox}$`, 'm'));
        assert.ok(!ps.includes(names.bobBox), ps);
      } finally {
        await shell('openstack application credential delete zun-docker');
      }
    } finally {
      await page.close();
      await browser.context.clearPermissions();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('Sign out revokes the token at Keystone: the page forgets it, the gateway refuses it at once, Keystone no longer knows it', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(gw.url);
      const token = await tokenFrom(await signIn(page, 'alice', 'alpha'));
      await shown(page.locator('#who-namespace', { hasText: 'os-alpha' }));
      assert.equal((await httpsGet(`${gw.url}/whoami`, { 'X-Auth-Token': token }))?.status, 200);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await shown(page.locator('#notice', { hasText: 'Signed out: the token was revoked at Keystone.' }));
      assert.equal(await page.locator('#project-section').isVisible(), false);
      assert.equal(await page.locator('#sign-in-form').isVisible(), true);
      assert.equal((await httpsGet(`${gw.url}/whoami`, { 'X-Auth-Token': token }))?.status, 401);
      const atKeystone = await fetch(`${e2eEnv().keystoneUrl}/auth/tokens`, { headers: { 'X-Auth-Token': token, 'X-Subject-Token': token } });
      assert.ok(atKeystone.status === 404 || atKeystone.status === 401, `Keystone answered ${atKeystone.status} for the revoked token`);
    } finally {
      await page.close();
    }
  });

  it("bob, signing in with the keyboard alone, sees his pod and container and nothing of alice's", async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(gw.url);
      // The focused element's id, or a radio button's value.
      const focused = () => page.evaluate("document.activeElement ? document.activeElement.id || document.activeElement.value || '' : ''");
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'password', 'the first stop is the Password method');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'username');
      await page.keyboard.type('bob');
      await page.keyboard.press('Tab');
      await page.keyboard.type(e2eEnv().passwords.bob);
      await page.keyboard.press('Tab');
      await page.keyboard.type('beta');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'domain');
      const answer = page.waitForResponse((r) => r.url().endsWith('/ui/api/sign-in'));
      await page.keyboard.press('Enter');
      await tokenFrom(await answer);
      await shown(page.locator('#pods table'));
      await shown(page.locator('#containers table'));
      assert.equal(await focused(), 'project-title', 'focus moves to the project once signed in');
      assert.equal(await page.locator('#who-namespace').textContent(), 'os-beta');
      await shown(page.locator('#pods tr', { hasText: names.bobPod }));
      await shown(page.locator('#containers tr', { hasText: names.bobBox }));
      const text = (await page.locator('main').textContent()) ?? '';
      for (const theirs of [names.alicePod, names.aliceBox, names.aliceLater, 'os-alpha']) assert.ok(!text.includes(theirs), `bob's page shows ${theirs}`);
    } finally {
      await page.close();
    }
  });

  it('axe-core finds no violation, signed out and signed in, at desktop and at phone width (where nothing overflows)', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(gw.url);
      assert.deepEqual(await axeViolations(page), [], 'signed out, desktop');
      await signIn(page, 'alice', 'alpha').then(tokenFrom);
      await shown(page.locator('#pods table'));
      await shown(page.locator('#containers table'));
      assert.deepEqual(await axeViolations(page), [], 'signed in, desktop');
      await page.setViewportSize({ width: 360, height: 740 });
      assert.deepEqual(await axeViolations(page), [], 'signed in, phone');
      assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'the page scrolls sideways at 360 px');
      await page.screenshot({ path: path.join(screenshotDir(), 'alice-phone.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('an engine that is down is said in place, calmly; the rest of the page works', async () => {
    const down = await startGateway({ cacheTtlSeconds: 20, dockerEngine: { host: `unix://${path.join(os.tmpdir(), `zgw-no-engine-${suffix}.sock`)}` } });
    const page = await browser.context.newPage();
    try {
      await page.goto(down.url);
      await signIn(page, 'alice', 'alpha').then(tokenFrom);
      await shown(page.locator('#pods tr', { hasText: names.alicePod }));
      const said = page.locator('#containers .warning');
      await shown(said);
      assert.match((await said.textContent()) ?? '', /^The Docker engine is not answering right now \(.+\)\. Nothing is lost: refresh in a moment\.$/);
    } finally {
      await page.close();
      await down.stop();
    }
  });
});
