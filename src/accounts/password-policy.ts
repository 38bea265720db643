// The rule for every new password (invitation, reset, change, CLI), after NIST SP 800-63B §5.1.1.2:
// at least 8 characters, no composition rules, not a common or breached password (the ~49,000-entry
// list shipped offline in @zxcvbn-ts/language-common), and not built from the user's email or name.
import { dictionary } from '@zxcvbn-ts/language-common';
import { DomainError } from '../errors.js';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

const COMMON_PASSWORDS = new Set((dictionary as Record<string, string[]>)['passwords-common']!.map((p) => p.toLowerCase()));

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'personal';

/** The reason a new password is refused, or undefined when it is acceptable. */
export function passwordProblem(password: string, context: { email?: string | undefined; name?: string | undefined } = {}): PasswordProblem | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return 'too_short';
  if (length > PASSWORD_MAX_LENGTH) return 'too_long';
  const lower = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lower) || COMMON_PASSWORDS.has(lower.replace(/[\d\W_]+$/, ''))) return 'common';
  const personal = [context.email?.toLowerCase(), context.email?.split('@')[0]?.toLowerCase(), ...(context.name?.toLowerCase().split(/\s+/) ?? [])];
  if (personal.some((part) => part && part.length >= 3 && lower.includes(part))) return 'personal';
  return undefined;
}

/** Throws a DomainError whose message is the i18n key explaining why (pages translate it, the CLI too). */
export function assertAcceptablePassword(password: string, context: { email?: string | undefined; name?: string | undefined } = {}): void {
  const problem = passwordProblem(password, context);
  if (problem) throw new DomainError(`password_${problem}`, `password.error.${problem}`);
}
