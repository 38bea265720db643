// Reading url-encoded form fields safely: only strings count (a repeated field arrives as an array).
import type { Context } from 'koa';

export function formField(ctx: Context, name: string): string | undefined {
  const value = (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** "jane.doe@example.com" → "j•••@example.com" for pages that must not show the whole address. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '•••';
  return `${email[0]}•••${email.slice(at)}`;
}
