import { GatewayError, getBlob, getJson, setup as fetchSetup, signIn, signOut, type Setup, type SignInForm } from './api.js';
import { containerRows, dockerCommands, kubectlCommands, podRows, timeLeft, whoAmI, type ContainerRow, type PodRow, type WhoAmI } from './format.js';

/**
 * The tenants' page. The token lives in this module's memory only: not in storage, not in a cookie, not in a URL,
 * so it is gone when the tab is closed. Everything is written with textContent (never HTML from data), and the
 * page's CSP allows no inline script anyway.
 */

/** The Docker Engine API version the lists use (the gateway serves 1.40 and later). */
const DOCKER_API = 'v1.41';

let token: string | undefined;
let expiresAt = '';
let expiryTimer: number | undefined;
let settings: Setup | undefined;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page lacks #${id}`);
  return found as T;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className !== undefined) made.className = className;
  return made;
}

function say(id: string, text: string): void {
  byId(id).textContent = text;
}

/** A table with a caption and column headers, or a calm sentence when there is nothing to list. */
function table<R>(caption: string, columns: ReadonlyArray<[string, (row: R) => string]>, rows: readonly R[]): HTMLElement {
  const t = element('table');
  t.append(element('caption', caption));
  const head = element('tr');
  for (const [label] of columns) {
    const th = element('th', label);
    th.scope = 'col';
    head.append(th);
  }
  t.append(element('thead'));
  t.tHead?.append(head);
  const body = element('tbody');
  for (const row of rows) {
    const tr = element('tr');
    for (const [, cell] of columns) tr.append(element('td', cell(row)));
    body.append(tr);
  }
  t.append(body);
  const wrap = element('div', undefined, 'scroll');
  wrap.tabIndex = 0;
  wrap.setAttribute('role', 'group');
  wrap.setAttribute('aria-label', caption);
  wrap.append(t);
  return wrap;
}

function fill(id: string, content: HTMLElement | string, className = 'quiet'): void {
  const place = byId(id);
  place.replaceChildren(typeof content === 'string' ? element('p', content, className) : content);
}

/** What to say in place of a list the engine could not give. */
function trouble(engine: string, err: unknown): string {
  if (!(err instanceof GatewayError)) return `${engine}: something went wrong in this page (${String(err)}).`;
  if (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504) {
    return `${engine} is not answering right now (${err.message}). Nothing is lost: refresh in a moment.`;
  }
  return `${engine} refused the list (HTTP ${err.status}): ${err.message}`;
}

/** A 401 means the token is no longer good (expired or revoked elsewhere): back to the sign-in. */
function expiredBy(err: unknown): boolean {
  if (err instanceof GatewayError && err.status === 401) {
    forget('Your sign-in is no longer valid (the token expired or was revoked). Sign in again.');
    return true;
  }
  return false;
}

async function showPods(who: WhoAmI, current: string): Promise<void> {
  if (!settings?.engines.includes('k8s')) return fill('pods', 'This gateway does not offer Kubernetes.');
  if (who.namespace === undefined) return fill('pods', 'The gateway maps your project to no namespace of its own, so there are no pods to list here.');
  fill('pods', 'Loading pods…');
  try {
    const list = await getJson(`/k8s/api/v1/namespaces/${encodeURIComponent(who.namespace)}/pods`, current);
    const rows = podRows(list, Date.now());
    if (rows.length === 0) return fill('pods', `No pods in ${who.namespace} yet.`);
    fill(
      'pods',
      table<PodRow>(`Pods in ${who.namespace}`, [
        ['Name', (r) => r.name],
        ['Phase', (r) => r.phase],
        ['Restarts', (r) => String(r.restarts)],
        ['Age', (r) => r.age],
      ], rows),
    );
  } catch (err) {
    if (!expiredBy(err)) fill('pods', trouble('Kubernetes', err), 'warning');
  }
}

async function showContainers(current: string): Promise<void> {
  if (!settings?.engines.includes('docker')) return fill('containers', 'This gateway does not offer Docker.');
  fill('containers', 'Loading containers…');
  try {
    const rows = containerRows(await getJson(`/docker/${DOCKER_API}/containers/json?all=1`, current));
    if (rows.length === 0) return fill('containers', 'No Docker containers in your project yet.');
    fill(
      'containers',
      table<ContainerRow>('Docker containers of your project', [
        ['Name', (r) => r.name],
        ['Image', (r) => r.image],
        ['State', (r) => r.state],
      ], rows),
    );
  } catch (err) {
    if (!expiredBy(err)) fill('containers', trouble('The Docker engine', err), 'warning');
  }
}

async function refresh(): Promise<void> {
  const current = token;
  if (current === undefined) return;
  const button = byId<HTMLButtonElement>('refresh');
  button.disabled = true;
  say('refreshed', 'Refreshing…');
  try {
    let who: WhoAmI;
    try {
      who = whoAmI(await getJson('/whoami', current));
    } catch (err) {
      if (!expiredBy(err)) say('refreshed', `The gateway could not say who you are: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (token !== current) return;
    say('session-who', `${who.user} · ${who.project}`);
    say('who-user', `${who.user} (domain ${who.userDomain})`);
    say('who-project', `${who.project} (domain ${who.projectDomain})`);
    say('kubectl-commands', kubectlCommands(settings?.keystoneUrl ?? '', who));
    say('who-roles', who.roles.join(', ') || 'none');
    say('who-expires', who.expiresAt === '' ? 'unknown' : `${new Date(who.expiresAt).toLocaleString()} (${timeLeft(who.expiresAt, Date.now())})`);
    say('who-namespace', who.namespace ?? 'none');
    say('who-clusters', who.clusters.join(', ') || 'none');
    await Promise.all([showPods(who, current), showContainers(current)]);
    if (token === current) say('refreshed', `Updated at ${new Date().toLocaleTimeString()}.`);
  } finally {
    button.disabled = false;
  }
}

function showSetup(): void {
  const server = settings?.server ?? null;
  byId('download-ca').hidden = settings?.certificateAuthority !== true;
  const download = byId<HTMLButtonElement>('download-kubeconfig');
  download.disabled = server === null || settings?.engines.includes('k8s') !== true;
  if (settings?.engines.includes('k8s') !== true) say('kubeconfig-status', 'This gateway does not offer Kubernetes.');
  else if (server === null) say('kubeconfig-status', "This gateway is served over plain HTTP; kubectl needs HTTPS. Ask its operator for the https:// address (ui.publicUrl).");
  say(
    'docker-commands',
    settings?.engines.includes('docker') !== true
      ? '# this gateway does not offer Docker'
      : server === null
        ? '# this gateway has no https:// address to give the docker CLI'
        : dockerCommands(server, settings?.certificateAuthority === true),
  );
}

function signedIn(newToken: string, expires: string): void {
  token = newToken;
  expiresAt = expires;
  byId('sign-in-section').hidden = true;
  byId('session').hidden = false;
  byId('project-section').hidden = false;
  byId('setup-section').hidden = false;
  say('notice', '');
  showSetup();
  // The page stops using the token when Keystone stops accepting it.
  const left = Date.parse(expiresAt) - Date.now();
  window.clearTimeout(expiryTimer);
  if (left > 0 && left < 2 ** 31 - 1) expiryTimer = window.setTimeout(() => forget('Your token expired. Sign in again.'), left);
  byId('project-title').focus();
  void refresh();
}

/** Drops the token and everything shown with it; back to the sign-in form. */
function forget(message: string): void {
  token = undefined;
  expiresAt = '';
  window.clearTimeout(expiryTimer);
  for (const id of ['pods', 'containers']) byId(id).replaceChildren();
  for (const id of ['who-user', 'who-project', 'who-roles', 'who-expires', 'who-namespace', 'who-clusters', 'session-who', 'refreshed', 'kubeconfig-status', 'kubectl-commands', 'copy-status']) {
    say(id, '');
  }
  byId('project-section').hidden = true;
  byId('setup-section').hidden = true;
  byId('session').hidden = true;
  byId('sign-in-section').hidden = false;
  say('notice', message);
  byId('sign-in-title').focus();
}

function readForm(form: HTMLFormElement): SignInForm {
  const data = new FormData(form);
  const value = (name: string): string => {
    const v = data.get(name);
    return typeof v === 'string' ? v : '';
  };
  return value('method') === 'application_credential'
    ? { method: 'application_credential', id: value('id').trim(), secret: value('secret') }
    : { method: 'password', username: value('username').trim(), password: value('password'), project: value('project').trim(), domain: value('domain').trim() || 'Default' };
}

function chooseMethod(method: string): void {
  const password = method !== 'application_credential';
  const passwordFields = byId<HTMLFieldSetElement>('password-fields');
  const credentialFields = byId<HTMLFieldSetElement>('application-credential-fields');
  passwordFields.hidden = !password;
  passwordFields.disabled = !password;
  credentialFields.hidden = password;
  credentialFields.disabled = password;
}

async function onSignIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  const button = byId<HTMLButtonElement>('sign-in');
  say('sign-in-error', '');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const answer = await signIn(readForm(form));
    // The secrets leave the form at once; the token is all that stays.
    for (const id of ['password', 'application-credential-secret']) byId<HTMLInputElement>(id).value = '';
    signedIn(answer.token, answer.expiresAt);
  } catch (err) {
    say('sign-in-error', err instanceof GatewayError ? (err.status === 0 ? 'The gateway did not answer. Check your connection and try again.' : err.message) : String(err));
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

async function onSignOut(): Promise<void> {
  const current = token;
  if (current === undefined) return;
  try {
    await signOut(current);
    forget('Signed out: the token was revoked at Keystone.');
  } catch (err) {
    const until = expiresAt === '' ? 'until it expires' : `until ${new Date(expiresAt).toLocaleString()}`;
    forget(`Signed out of this page, but Keystone could not revoke the token (${err instanceof Error ? err.message : String(err)}); it stays valid ${until}.`);
  }
}

async function onDownloadKubeconfig(): Promise<void> {
  const current = token;
  if (current === undefined) return;
  say('kubeconfig-status', 'Preparing the kubeconfig…');
  try {
    const blob = await getBlob('/ui/api/kubeconfig', current);
    const url = URL.createObjectURL(blob);
    const link = element('a');
    link.href = url;
    link.download = 'zun-gateway.kubeconfig';
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    say('kubeconfig-status', 'Downloaded zun-gateway.kubeconfig.');
  } catch (err) {
    if (!expiredBy(err)) say('kubeconfig-status', `No kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function onCopy(event: Event): Promise<void> {
  const source = (event.currentTarget as HTMLElement).dataset.copy;
  const text = source === undefined ? '' : (byId(source).textContent ?? '');
  try {
    await navigator.clipboard.writeText(text);
    say('copy-status', 'Copied to the clipboard.');
  } catch {
    say('copy-status', 'The browser did not allow copying: select the text and copy it yourself.');
  }
}

async function start(): Promise<void> {
  const form = byId<HTMLFormElement>('sign-in-form');
  form.addEventListener('submit', (e) => void onSignIn(e as SubmitEvent));
  for (const radio of Array.from(form.querySelectorAll<HTMLInputElement>('input[name="method"]'))) {
    radio.addEventListener('change', () => chooseMethod(radio.value));
  }
  chooseMethod(form.querySelector<HTMLInputElement>('input[name="method"]:checked')?.value ?? 'password');
  byId('sign-out').addEventListener('click', () => void onSignOut());
  byId('refresh').addEventListener('click', () => void refresh());
  byId('download-kubeconfig').addEventListener('click', () => void onDownloadKubeconfig());
  for (const button of Array.from(document.querySelectorAll<HTMLButtonElement>('button.copy'))) {
    button.addEventListener('click', (e) => void onCopy(e));
  }
  try {
    settings = await fetchSetup();
  } catch (err) {
    say('notice', `The gateway did not describe itself (${err instanceof Error ? err.message : String(err)}); signing in may still work.`);
  }
}

void start();
