// Errors that domain modules raise for bad input or broken rules. Routes turn them into a page or
// JSON error with `status`; the CLI prints `message` and exits non-zero. Anything else is a bug (500).
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** Unique-violation from PostgreSQL (pg and PGlite both report SQLSTATE 23505). */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string; message?: string } | undefined;
  if (e?.code !== '23505') return false;
  return !constraint || e.constraint === constraint || Boolean(e.message?.includes(constraint));
}
