/**
 * Client headers that must never reach the apiserver (invariants.md 1, 2, 6), each in several letter cases.
 * Every value is distinct and contains `hostile-`, so a test can look for any survivor by value as well as by name.
 */
export const HOSTILE_NAMES = [
  'Authorization',
  'X-Auth-Token',
  'X-Subject-Token',
  'Impersonate-User',
  'Impersonate-Group',
  'Impersonate-Uid',
  'Impersonate-Extra-scopes',
  'Impersonate-Extra-keystone-project-id',
  'Impersonate-Extra-anything',
  'X-Forwarded-For',
  'X-Forwarded-Host',
  'X-Forwarded-Proto',
  'Forwarded',
  'X-Real-IP',
  'X-Remote-User',
  'X-Remote-Group',
  'X-Remote-Extra-x',
  'X-Remote-Extra-Scopes',
  'Proxy-Authorization',
] as const;

/** The name as written, lower case, upper case, and alternating case. */
export function letterCases(name: string): string[] {
  const alternating = [...name].map((c, i) => (i % 2 === 0 ? c.toLowerCase() : c.toUpperCase())).join('');
  return [...new Set([name, name.toLowerCase(), name.toUpperCase(), alternating])];
}

/** A flat rawHeaders-like list: every hostile name in every letter case, with a distinct `hostile-N` value. */
export function hostileHeaderLines(options: { skip?: (lowerName: string) => boolean } = {}): string[] {
  const out: string[] = [];
  let n = 0;
  for (const name of HOSTILE_NAMES) {
    if (options.skip?.(name.toLowerCase())) continue;
    for (const variant of letterCases(name)) out.push(variant, `hostile-${n++}`);
  }
  return out;
}

/** Every value of one header (case-insensitive) in a flat header list. */
export function headerLines(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  const lower = name.toLowerCase();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === lower) out.push(rawHeaders[i + 1] as string);
  }
  return out;
}

/** Lower-cased header names of a flat header list. */
export function headerNames(rawHeaders: readonly string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}
