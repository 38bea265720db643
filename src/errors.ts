// Errors that domain modules raise for bad input or broken rules. Routes turn them into a page or
// JSON error with `status`; the CLI prints the English text and exits non-zero. Anything else is a bug
// (500). The message is a catalogue key (src/i18n) and `params` fill its placeholders, so every page
// shows it in its own language; a param given as { key } is itself translated (e.g. a field's name).
import { isMessageKey, translator, type MessageKey, type Translate } from './i18n/index.js';

export type ErrorParams = Record<string, string | number | { key: MessageKey }>;

export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: MessageKey | string,
    readonly status = 400,
    readonly params: ErrorParams = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** The error's text with `t` (a page's language); text that is not a catalogue key passes through. */
export function describeError(error: DomainError, t: Translate): string {
  if (!isMessageKey(error.message)) return error.message;
  const params = Object.fromEntries(Object.entries(error.params).map(([name, value]) => [name, typeof value === 'object' ? t(value.key) : value]));
  return t(error.message, params);
}

/** The error's text in English (the CLI, JSON errors of APIs for machines). */
export function englishError(error: DomainError): string {
  return describeError(error, translator('en'));
}

/** Unique-violation from PostgreSQL (pg and PGlite both report SQLSTATE 23505). */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string; message?: string } | undefined;
  if (e?.code !== '23505') return false;
  return !constraint || e.constraint === constraint || Boolean(e.message?.includes(constraint));
}
