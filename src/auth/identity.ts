/**
 * Who is calling, as Keystone said when it validated the token. Made only in auth/, read everywhere else.
 * The scope is always a project: unscoped, domain- and system-scoped tokens are refused in auth/.
 */
export interface Identity {
  readonly user: { readonly id: string; readonly name: string; readonly domainId: string; readonly domainName: string };
  readonly project: { readonly id: string; readonly name: string; readonly domainId: string; readonly domainName: string };
  readonly roles: readonly string[];
  /** When Keystone says the token stops being valid. */
  readonly expiresAt: Date;
  /** Set when the token was made from an application credential. */
  readonly applicationCredentialId?: string;
}
