/**
 * Every secret the e2e run handed out (tokens, application credential secrets), so the last spec can check that
 * none of them reached the gateway's logs or audit trail. Passwords come from the environment.
 */
const seen = new Set<string>();

export function rememberSecret<T extends string | null | undefined>(value: T): T {
  if (typeof value === 'string' && value.length >= 8) seen.add(value);
  return value;
}

export function rememberedSecrets(): readonly string[] {
  return [...seen];
}
