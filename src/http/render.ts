// Renders an ejs view from views/ with the page's translator, locale and CSRF token.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { Context } from 'koa';
import { negotiateLocale, translator, type Locale } from '../i18n/index.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export function pageLocale(ctx: Context): Locale {
  return (ctx.state.locale as Locale | undefined) ?? negotiateLocale({ acceptLanguage: ctx.get('accept-language') });
}

export async function render(ctx: Context, view: string, data: Record<string, unknown> = {}, status = 200): Promise<void> {
  const locale = pageLocale(ctx);
  const html = await ejs.renderFile(
    path.join(VIEWS_DIR, `${view}.ejs`),
    { t: translator(locale), locale, csrfToken: ctx.state.csrfToken ?? '', ...data },
    { cache: true, views: [VIEWS_DIR] },
  );
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = html;
}
