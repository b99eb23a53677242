import type { KeystoneAuthInputs } from '../config/openstack-inputs.js';
import type { ServiceCredentials } from '../config/schema.js';

export type { KeystoneAuthInputs };

function ref(id: string | undefined, name: string | undefined, domainId?: string, domainName?: string): Record<string, unknown> {
  if (id !== undefined) return { id };
  const out: Record<string, unknown> = { name };
  if (domainId !== undefined) out.domain = { id: domainId };
  else if (domainName !== undefined) out.domain = { name: domainName };
  return out;
}

/** The body of POST /v3/auth/tokens. Passwords carry a project scope; application credentials never do. */
export function keystoneAuthBody(inputs: KeystoneAuthInputs): unknown {
  if (inputs.method === 'application_credential') {
    const credential: Record<string, unknown> = { secret: inputs.secret };
    if (inputs.id !== undefined) credential.id = inputs.id;
    else {
      credential.name = inputs.name;
      credential.user = ref(inputs.userId, inputs.username, inputs.userDomainId, inputs.userDomainName);
    }
    return { auth: { identity: { methods: ['application_credential'], application_credential: credential } } };
  }
  const user = { ...ref(inputs.userId, inputs.username, inputs.userDomainId, inputs.userDomainName), password: inputs.password };
  const auth: Record<string, unknown> = { identity: { methods: ['password'], password: { user } } };
  if (inputs.projectId !== undefined || inputs.projectName !== undefined) {
    auth.scope = { project: ref(inputs.projectId, inputs.projectName, inputs.projectDomainId, inputs.projectDomainName) };
  }
  return { auth };
}

export function serviceAuthInputs(c: ServiceCredentials): KeystoneAuthInputs {
  if ('applicationCredentialId' in c) {
    return { method: 'application_credential', id: c.applicationCredentialId, secret: c.applicationCredentialSecret };
  }
  return {
    method: 'password',
    password: c.password,
    userId: c.userId,
    username: c.username,
    userDomainId: c.userDomainId,
    userDomainName: c.userDomainName,
    projectId: c.projectId,
    projectName: c.projectName,
    projectDomainId: c.projectDomainId,
    projectDomainName: c.projectDomainName,
  };
}
