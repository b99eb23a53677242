import { e2eEnv } from './env.js';
import { rememberSecret } from './secrets.js';

export type E2eUser = 'alice' | 'bob' | 'carol' | 'dave' | 'gateway';

export interface IssuedToken {
  readonly token: string;
  readonly expiresAt: string;
  readonly projectId: string;
  readonly userId: string;
  /** The role names Keystone put in the token, implied roles included (member implies reader). */
  readonly roles: readonly string[];
}

interface TokenAnswer {
  token: { expires_at: string; project?: { id: string }; user: { id: string }; roles?: { name: string }[] };
}

/** A project-scoped token from the real Keystone, as `openstack token issue` would get it. */
export async function issueToken(user: E2eUser, project: string | null): Promise<IssuedToken> {
  const env = e2eEnv();
  const auth: Record<string, unknown> = {
    identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password: env.passwords[user] } } },
  };
  if (project !== null) auth.scope = { project: { name: project, domain: { name: 'Default' } } };
  const res = await fetch(`${env.keystoneUrl}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth }),
  });
  if (res.status !== 201) throw new Error(`Keystone refused ${user}@${project}: HTTP ${res.status} ${await res.text()}`);
  const token = rememberSecret(res.headers.get('x-subject-token'));
  const body = (await res.json()) as TokenAnswer;
  if (token === null) throw new Error('Keystone sent no X-Subject-Token');
  return { token, expiresAt: body.token.expires_at, projectId: body.token.project?.id ?? '', userId: body.token.user.id, roles: (body.token.roles ?? []).map((r) => r.name) };
}

/** DELETE /v3/auth/tokens: what `openstack token revoke` does. A user may revoke their own token. */
export async function revokeToken(token: string): Promise<void> {
  const res = await fetch(`${e2eEnv().keystoneUrl}/auth/tokens`, {
    method: 'DELETE',
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  });
  if (res.status !== 204) throw new Error(`revoking a token failed: HTTP ${res.status}`);
}

export async function projectId(name: string): Promise<string> {
  return (await issueToken(name === 'beta' ? 'bob' : 'alice', name)).projectId;
}
