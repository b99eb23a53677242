import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { e2eEnv } from './env.js';
import { rememberSecret } from './secrets.js';

async function adminToken(): Promise<string> {
  const env = e2eEnv();
  const res = await fetch(`${env.keystoneUrl}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: env.passwords.admin } } },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    }),
  });
  const token = rememberSecret(res.headers.get('x-subject-token'));
  if (res.status !== 201 || token === null) throw new Error(`Keystone admin login failed: HTTP ${res.status}`);
  return token;
}

async function call<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
  const res = await fetch(`${e2eEnv().keystoneUrl}${path}`, {
    method,
    headers: { 'x-auth-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status >= 300) throw new Error(`Keystone ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** Keystone's own administration, for fixtures (a fresh project, role assignments). `role` is member unless given. */
export async function createProjectWithMember(name: string, user: string, role = 'member'): Promise<string> {
  const token = await adminToken();
  const { project } = await call<{ project: { id: string } }>('POST', '/projects', token, { project: { name, domain_id: 'default' } });
  const { users } = await call<{ users: Array<{ id: string }> }>('GET', `/users?name=${user}`, token);
  const { roles } = await call<{ roles: Array<{ id: string }> }>('GET', `/roles?name=${role}`, token);
  await call('PUT', `/projects/${project.id}/users/${users[0]?.id}/roles/${roles[0]?.id}`, token);
  return project.id;
}

/** What `openstack project set --tag` does (replacing them all): the project's Keystone tags. */
export async function setProjectTags(id: string, tags: readonly string[]): Promise<void> {
  await call('PUT', `/projects/${id}/tags`, await adminToken(), { tags });
}

/** What `openstack role remove --user U --project P ROLE` does (Keystone records no revocation event for it). */
export async function removeProjectRole(projectId: string, userId: string, role: string): Promise<void> {
  const token = await adminToken();
  const { roles } = await call<{ roles: Array<{ id: string }> }>('GET', `/roles?name=${role}`, token);
  await call('DELETE', `/projects/${projectId}/users/${userId}/roles/${roles[0]?.id}`, token);
}

/** The ids of every project Keystone has. */
export async function projectIds(): Promise<Set<string>> {
  const { projects, truncated } = await call<{ projects: Array<{ id: string }>; truncated?: boolean }>('GET', '/projects', await adminToken());
  // With a list_limit, Keystone answers some: a project left out would look deleted.
  if (truncated === true) throw new Error('Keystone listed only some projects (list_limit): cannot tell which are gone');
  return new Set(projects.map((p) => p.id));
}

export async function deleteProject(id: string): Promise<void> {
  await call('DELETE', `/projects/${id}`, await adminToken());
}

/** An application credential of the user's own, made with the user's project-scoped token. */
export async function createApplicationCredential(
  userToken: string,
  userId: string,
  name: string,
  expiresAt?: Date,
  accessRules?: ReadonlyArray<{ service: string; method: string; path: string }>,
): Promise<{ id: string; secret: string }> {
  const { application_credential: ac } = await call<{ application_credential: { id: string; secret: string } }>(
    'POST',
    `/users/${userId}/application_credentials`,
    userToken,
    {
      application_credential: {
        name,
        ...(expiresAt ? { expires_at: expiresAt.toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
        ...(accessRules ? { access_rules: accessRules } : {}),
      },
    },
  );
  return { id: ac.id, secret: rememberSecret(ac.secret) };
}

/** A token from an application credential; Keystone caps its expiry at the credential's own. */
export async function applicationCredentialToken(id: string, secret: string): Promise<{ token: string; expiresAt: string }> {
  const res = await fetch(`${e2eEnv().keystoneUrl}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } }),
  });
  const token = rememberSecret(res.headers.get('x-subject-token'));
  if (res.status !== 201 || token === null) throw new Error(`application credential login failed: HTTP ${res.status}`);
  const body = (await res.json()) as { token: { expires_at: string } };
  return { token, expiresAt: body.token.expires_at };
}

/** A reverse proxy in front of Keystone that counts password/application-credential authentications. */
export async function countingKeystoneProxy(): Promise<{ url: string; authentications: () => number; close: () => Promise<void> }> {
  const target = new URL(e2eEnv().keystoneUrl);
  let authentications = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && (req.url ?? '').startsWith('/v3/auth/tokens')) authentications += 1;
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v3`,
    authentications: () => authentications,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A fresh Keystone user in the Default domain with a role (member unless given) on a fresh project of the same name. */
export async function createUserWithProject(name: string, password: string, role = 'member'): Promise<{ userId: string; projectId: string }> {
  const token = await adminToken();
  rememberSecret(password);
  const { user } = await call<{ user: { id: string } }>('POST', '/users', token, { user: { name, password, domain_id: 'default' } });
  const projectId = await createProjectWithMember(name, name, role);
  return { userId: user.id, projectId };
}

export async function deleteUser(id: string): Promise<void> {
  await call('DELETE', `/users/${id}`, await adminToken());
}

/** What `openstack user password set` does: the user changes their own password (Keystone revokes their tokens). */
export async function changeOwnPassword(userId: string, userToken: string, original: string, password: string): Promise<void> {
  rememberSecret(password);
  await call('POST', `/users/${userId}/password`, userToken, { user: { password, original_password: original } });
}

/** A token for a user of the Default domain, by name and password, with the given scope. */
async function scopedToken(user: string, password: string, scope: object, what: string): Promise<string> {
  const res = await fetch(`${e2eEnv().keystoneUrl}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } }, scope } }),
  });
  const token = rememberSecret(res.headers.get('x-subject-token'));
  if (res.status !== 201 || token === null) throw new Error(`Keystone refused ${what}: HTTP ${res.status}`);
  return token;
}

/** A project-scoped token for a user of the Default domain, by name and password. */
export function passwordToken(user: string, password: string, project: string): Promise<string> {
  return scopedToken(user, password, { project: { name: project, domain: { name: 'Default' } } }, `${user}@${project}`);
}

/**
 * Deletes one application credential by itself. Delete a user's application credentials this way before the user:
 * Keystone 22 on SQLite removes a deleted user's credentials without their role rows, and the next credential anyone
 * creates then gets the same internal id and fails with 409 "Duplicate entry".
 */
export async function deleteApplicationCredential(userId: string, id: string): Promise<void> {
  await call('DELETE', `/users/${userId}/application_credentials/${id}`, await adminToken());
}

/** A fresh Keystone user in the Default domain whose only role is `role` on the Default domain itself. */
export async function createDomainUser(name: string, password: string, role: string): Promise<string> {
  const token = await adminToken();
  rememberSecret(password);
  const { user } = await call<{ user: { id: string } }>('POST', '/users', token, { user: { name, password, domain_id: 'default' } });
  const { roles } = await call<{ roles: Array<{ id: string }> }>('GET', `/roles?name=${role}`, token);
  await call('PUT', `/domains/default/users/${user.id}/roles/${roles[0]?.id}`, token);
  return user.id;
}

/** A token scoped to the Default domain. */
export function domainToken(user: string, password: string): Promise<string> {
  return scopedToken(user, password, { domain: { name: 'Default' } }, `a domain-scoped token for ${user}`);
}

/** The catalog's services of a type, each with its endpoints (what `register` made). */
export async function servicesOfType(type: string): Promise<Array<{ id: string; endpoints: Array<{ id: string; interface: string; url: string; region_id: string | null }> }>> {
  const token = await adminToken();
  const { services } = await call<{ services: Array<{ id: string }> }>('GET', `/services?type=${encodeURIComponent(type)}`, token);
  return Promise.all(
    services.map(async (s) => {
      const { endpoints } = await call<{ endpoints: Array<{ id: string; interface: string; url: string; region_id: string | null }> }>('GET', `/endpoints?service_id=${s.id}`, token);
      return { id: s.id, endpoints };
    }),
  );
}

/** Deletes the services of a type (Keystone deletes their endpoints with them). */
export async function deleteServicesOfType(type: string): Promise<void> {
  const token = await adminToken();
  for (const s of await servicesOfType(type)) await call('DELETE', `/services/${s.id}`, token);
}

/** A user's application credentials of a name, as Keystone lists them (access rules included; never the secret). */
export async function applicationCredentialsNamed(userId: string, name: string): Promise<Array<{ id: string; access_rules?: Array<{ service: string; method: string; path: string }> }>> {
  const { application_credentials: found } = await call<{ application_credentials: Array<{ id: string; access_rules?: Array<{ service: string; method: string; path: string }> }> }>(
    'GET',
    `/users/${userId}/application_credentials?name=${encodeURIComponent(name)}`,
    await adminToken(),
  );
  return found;
}
