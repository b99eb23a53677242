import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parse } from 'yaml';
import { selfSignedCert, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KeystoneDouble } from '../helpers/keystone-double.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

function assertSecured(headers: Record<string, string>): void {
  assert.equal(
    headers['content-security-policy'],
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  );
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['x-content-type-options'], 'nosniff');
}

describe('the tenants\' page (GET / for browsers, /ui), against the Keystone double', () => {
  let keystone: KeystoneDouble;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let caDir: string;
  let ca: string;
  const form = { method: 'password', username: 'alice', password: 'alice-pw', project: 'alpha', domain: 'Default' };
  const page = () => request(gw.url);

  before(async () => {
    keystone = await new KeystoneDouble().start();
    keystone.addUser({ id: 'alice-id', name: 'alice', password: 'alice-pw', projects: { alpha: { id: 'alpha-id', roles: ['member', 'reader'] } } });
    keystone.addUser({ id: 'bob-id', name: 'bob', password: 'bob-pw', projects: { beta: { id: 'beta-id', roles: ['member'] } } });
    upstream = await new RecordingUpstream().start();
    caDir = mkdtempSync(path.join(os.tmpdir(), 'zgw-page-ca-'));
    ca = selfSignedCert(caDir).cert;
    gw = await startTestGateway({
      keystoneUrl: keystone.url,
      upstreamUrl: upstream.url,
      tls: true,
      extraYaml: `ui: {certificateAuthorityFile: ${ca}, failedSignIns: {perUser: 3, perAddress: 50}}`,
    });
  });
  after(async () => {
    await gw.stop();
    await upstream.stop();
    await keystone.stop();
    rmSync(caDir, { recursive: true, force: true });
  });

  it('GET / answers a browser the page, with the security headers, revalidated on every visit', async () => {
    const res = await page().get('/').set('Accept', BROWSER_ACCEPT).disableTLSCerts().expect(200);
    assert.match(res.headers['content-type'] ?? '', /^text\/html/);
    assertSecured(res.headers);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(res.headers.vary ?? '', /Accept/);
    assert.match(res.text, /<h2 id="sign-in-title" tabindex="-1">Sign in with Keystone<\/h2>/);
  });

  it('GET / keeps answering API clients the JSON discovery (no Accept, */*, application/json), varying on Accept', async () => {
    for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/html;q=0.5']) {
      const req = page().get('/').disableTLSCerts();
      if (accept !== undefined) req.set('Accept', accept);
      const res = await req.expect(200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/, `Accept: ${accept}`);
      assert.equal(res.body.name, 'zun-gateway');
      assert.match(res.headers.vary ?? '', /Accept/);
    }
  });

  it('the page has no inline script or style and names no other origin; its assets are cached for a year', async () => {
    const html = (await page().get('/').set('Accept', 'text/html').disableTLSCerts().expect(200)).text;
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, 'an inline <script>');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'inline style or an event handler attribute');
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    assert.ok(refs.length >= 3, refs.join(' '));
    for (const ref of refs) assert.match(ref, /^\/ui\//, `a reference off this origin: ${ref}`);
    const script = refs.find((r) => /^\/ui\/assets\/app-[A-Z0-9]+\.js$/.test(r));
    const style = refs.find((r) => /^\/ui\/assets\/style-[A-Z0-9]+\.css$/.test(r));
    assert.ok(script !== undefined && style !== undefined, refs.join(' '));
    for (const [asset, type] of [[script, /^text\/javascript/], [style, /^text\/css/]] as const) {
      const res = await page().get(asset).disableTLSCerts().expect(200);
      assert.match(res.headers['content-type'] ?? '', type);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
      assertSecured(res.headers);
    }
    const missing = await page().get('/ui/assets/app-NOPE.js').disableTLSCerts().expect(404);
    assertSecured(missing.headers);
  });

  it('POST /ui/api/sign-in relays to Keystone and hands back the token once, never to be cached', async () => {
    const res = await page().post('/ui/api/sign-in').disableTLSCerts().send(form).expect(200);
    assert.match(res.body.token, /^user-token-/);
    assert.ok(Date.parse(res.body.expiresAt) > Date.now());
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['set-cookie'], undefined);
    assertSecured(res.headers);
    // The token works like any other at the gateway's own endpoints.
    const who = await page().get('/whoami').set('X-Auth-Token', res.body.token).disableTLSCerts().expect(200);
    assert.equal(who.body.user.name, 'alice');
    assert.equal(who.body.project.name, 'alpha');
  });

  it("a wrong password gets Keystone's refusal in plain words, and no token", async () => {
    const res = await page().post('/ui/api/sign-in').disableTLSCerts().send({ ...form, username: 'bob', password: 'wrong' }).expect(401);
    assert.equal(res.body.token, undefined);
    assert.match(res.body.message, /^Keystone refused the sign-in \(HTTP 401: The request you have made requires authentication\.\): check the user name, password/);
  });

  it('failed sign-ins for a user name are limited: 429 with Retry-After, and Keystone is no longer asked', async () => {
    const victim = { ...form, username: 'carol', password: 'x' };
    keystone.addUser({ id: 'carol-id', name: 'carol', password: 'the-real-one', projects: { alpha: { id: 'alpha-id', roles: ['reader'] } } });
    for (let i = 0; i < 3; i += 1) await page().post('/ui/api/sign-in').disableTLSCerts().send(victim).expect(401);
    const asked = keystone.issueCalls;
    const res = await page().post('/ui/api/sign-in').disableTLSCerts().send({ ...victim, password: 'the-real-one' }).expect(429);
    assert.equal(res.headers['retry-after'], '900');
    assert.match(res.body.message, /too many failed sign-ins for this user name: try again in 15 minutes/);
    assert.equal(keystone.issueCalls, asked);
  });

  it("refuses sign-ins another site's page makes in the user's browser, and forms that are not JSON, before Keystone is asked", async () => {
    const asked = keystone.issueCalls;
    const cross = await page().post('/ui/api/sign-in').disableTLSCerts().set('Origin', 'https://phish.example').send(form).expect(403);
    assert.match(cross.body.message, /only taken from the gateway's own page/);
    await page().post('/ui/api/sign-in').disableTLSCerts().set('Sec-Fetch-Site', 'cross-site').send(form).expect(403);
    await page().post('/ui/api/sign-in').disableTLSCerts().set('Sec-Fetch-Site', 'same-site').send(form).expect(403);
    // A Host that is no usable URL (port out of range) is no origin of the gateway's, and no crash.
    await page().post('/ui/api/sign-in').disableTLSCerts().set('Host', '127.0.0.1:99999').set('Origin', 'https://127.0.0.1:99999').send(form).expect(403);
    const plain = await page().post('/ui/api/sign-in').disableTLSCerts().type('form').send('username=alice&password=alice-pw').expect(415);
    assert.match(plain.body.message, /send the sign-in form as application\/json/);
    await page().post('/ui/api/sign-in').disableTLSCerts().set('Content-Type', 'application/json').send(`{"method":"password","username":"${'a'.repeat(9000)}"}`).expect(413);
    assert.equal(keystone.issueCalls, asked);
    // The page's own calls pass: same origin by Fetch metadata and by Origin.
    await page().post('/ui/api/sign-in').disableTLSCerts().set('Sec-Fetch-Site', 'same-origin').set('Origin', gw.url).send(form).expect(200);
  });

  it('sign-out revokes the token at Keystone, and this gateway refuses it at once (no wait for its cache)', async () => {
    const { token } = (await page().post('/ui/api/sign-in').disableTLSCerts().send(form).expect(200)).body as { token: string };
    await page().get('/whoami').set('X-Auth-Token', token).disableTLSCerts().expect(200);
    const out = await page().post('/ui/api/sign-out').set('X-Auth-Token', token).disableTLSCerts().expect(204);
    assert.equal(out.headers['cache-control'], 'no-store');
    assert.ok(keystone.revoked.includes(token));
    await page().get('/whoami').set('X-Auth-Token', token).disableTLSCerts().expect(401);
    await page().post('/ui/api/sign-out').disableTLSCerts().expect(401);
  });

  it('GET /ui/api/kubeconfig: the exec-plugin kubeconfig with this gateway\'s URL and CA, no secret in it; only with a token', async () => {
    const { token } = (await page().post('/ui/api/sign-in').disableTLSCerts().send(form).expect(200)).body as { token: string };
    const res = await page().get('/ui/api/kubeconfig').set('X-Auth-Token', token).disableTLSCerts().expect(200);
    assert.match(res.headers['content-disposition'] ?? '', /attachment; filename="zun-gateway.kubeconfig"/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const doc = parse(res.text) as {
      clusters: Array<{ cluster: Record<string, string> }>;
      users: Array<{ user: { exec: { command: string; args: string[]; apiVersion: string; interactiveMode: string; env?: unknown } } }>;
    };
    assert.equal(doc.clusters[0]?.cluster.server, `${gw.url}/k8s`);
    assert.equal(Buffer.from(doc.clusters[0]?.cluster['certificate-authority-data'] ?? '', 'base64').toString('utf8'), readFileSync(ca, 'utf8'));
    assert.deepEqual(doc.users[0]?.user, {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'zun-gateway', args: ['credential'], interactiveMode: 'Never', provideClusterInfo: false },
    });
    assert.ok(!res.text.includes(token) && !/password|secret|token:/i.test(res.text), res.text);
    await page().get('/ui/api/kubeconfig').disableTLSCerts().expect(401);
    await page().get('/ui/api/kubeconfig').set('X-Auth-Token', 'nobody').disableTLSCerts().expect(401);
  });

  it('GET /ui/api/kubeconfig with several clusters: a context per cluster the project may use, as `zun-gateway kubeconfig` writes', async () => {
    const west = await new RecordingUpstream().start();
    keystone.projectTags.set('alpha-id', ['west']);
    const several = await startTestGateway({
      keystoneUrl: keystone.url,
      upstreamUrl: 'unused',
      clusters: [
        { name: 'east', upstreamUrl: upstream.url },
        { name: 'west', upstreamUrl: west.url, yaml: 'projectTags: [west]' },
      ],
      k8sYaml: '  tenancy: {}',
      tls: true,
      extraYaml: `ui: {certificateAuthorityFile: ${ca}}`,
    });
    try {
      const kubeconfigOf = async (who: typeof form): Promise<{ contexts: Array<{ name: string; context: { cluster: string; namespace?: string } }>; clusters: Array<{ name: string; cluster: { server: string } }>; 'current-context': string }> => {
        const { token } = (await request(several.url).post('/ui/api/sign-in').disableTLSCerts().send(who).expect(200)).body as { token: string };
        return parse((await request(several.url).get('/ui/api/kubeconfig').set('X-Auth-Token', token).disableTLSCerts().expect(200)).text);
      };
      const alice = await kubeconfigOf(form);
      assert.deepEqual(alice.clusters.map((c) => [c.name, c.cluster.server]), [
        ['zun-gateway-east', `${several.url}/k8s/clusters/east`],
        ['zun-gateway-west', `${several.url}/k8s/clusters/west`],
      ]);
      assert.deepEqual(alice.contexts.map((c) => [c.name, c.context.namespace]), [['zun-gateway-east', 'os-alpha'], ['zun-gateway-west', 'os-alpha']]);
      assert.equal(alice['current-context'], 'zun-gateway-east');
      const bob = await kubeconfigOf({ ...form, username: 'bob', password: 'bob-pw', project: 'beta' });
      assert.deepEqual(bob.clusters.map((c) => c.name), ['zun-gateway-east'], 'west is not open to beta');
    } finally {
      keystone.projectTags.delete('alpha-id');
      await several.stop();
      await west.stop();
    }
  });

  it('GET /ui/api/setup and /ui/ca.pem tell the page what to offer; unknown /ui paths are 404 with the headers', async () => {
    const setup = await page().get('/ui/api/setup').disableTLSCerts().expect(200);
    assert.deepEqual(setup.body, { server: gw.url, certificateAuthority: true, keystoneUrl: keystone.url, engines: ['k8s'] });
    const pem = await page().get('/ui/ca.pem').disableTLSCerts().buffer(true).parse((res, done) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => done(null, text));
    }).expect(200);
    assert.equal(pem.body, readFileSync(ca, 'utf8'));
    const none = await page().get('/ui/nothing').disableTLSCerts().expect(404);
    assertSecured(none.headers);
    assert.match(none.body.message, /no such page resource: GET \/ui\/nothing/);
  });

  it('ui.enabled: false leaves GET / to the JSON discovery and serves no /ui', async () => {
    const off = await startTestGateway({ keystoneUrl: keystone.url, upstreamUrl: upstream.url, extraYaml: 'ui: {enabled: false}' });
    try {
      const res = await request(off.gateway.server).get('/').set('Accept', BROWSER_ACCEPT).expect(200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(res.headers['content-security-policy'], undefined);
      await request(off.gateway.server).get('/ui/api/setup').expect(404);
    } finally {
      await off.stop();
    }
  });
});
