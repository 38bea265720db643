// Renders an ejs view from views/ with the page's translator, locale, brand, language switcher, CSRF
// token and the accessibility helper `field()` for form fields.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { Context } from 'koa';
import { catalogue, LOCALES, negotiateLocale, supportedLocale, translator, type Locale, type LocaleSources } from '../i18n/index.js';
import type { BrandView } from './brand.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

/** The cookie the language switcher sets (plain: it holds only "en" or "de"). */
export const LANG_COOKIE = 'idp_lang';
const LANG_COOKIE_MAX_AGE_MS = 365 * 24 * 60 * 60 * 1000;

/** The language picked with the switcher: `?lang=` on this request, else the cookie. */
export function chosenLocale(ctx: Context): Locale | undefined {
  const query = ctx.query.lang;
  return supportedLocale(typeof query === 'string' ? query : undefined) ?? supportedLocale(ctx.cookies.get(LANG_COOKIE));
}

/** Middleware for every request: `?lang=de` on a GET (the switcher's links) is remembered in a cookie. */
export function languageSwitch() {
  return async function rememberLanguage(ctx: Context, next: () => Promise<unknown>): Promise<void> {
    const query = ctx.query.lang;
    const picked = ctx.method === 'GET' && typeof query === 'string' ? supportedLocale(query) : undefined;
    if (picked && picked !== supportedLocale(ctx.cookies.get(LANG_COOKIE))) {
      ctx.cookies.set(LANG_COOKIE, picked, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: LANG_COOKIE_MAX_AGE_MS, overwrite: true });
    }
    await next();
  };
}

export function pageLocale(ctx: Context): Locale {
  return (ctx.state.locale as Locale | undefined) ?? negotiateLocale({ chosen: chosenLocale(ctx), acceptLanguage: ctx.get('accept-language') });
}

/** Fixes the page language once more is known: the app's ui_locales, the user's saved language. */
export function setPageLocale(ctx: Context, sources: Omit<LocaleSources, 'chosen' | 'acceptLanguage'>): Locale {
  const locale = negotiateLocale({ ...sources, chosen: chosenLocale(ctx), acceptLanguage: ctx.get('accept-language') });
  ctx.state.locale = locale;
  return locale;
}

/**
 * Where the language switcher sends the browser: this page again by GET. A page answered to a POST (or a
 * one-time callback) goes back to the GET page it belongs to (`ctx.state.pageUrl` overrides).
 */
export function pageUrl(ctx: Context): string {
  if (typeof ctx.state.pageUrl === 'string') return ctx.state.pageUrl;
  const interaction = /^\/interaction\/([\w-]+)(\/|$)/.exec(ctx.path);
  if (interaction) return `/interaction/${interaction[1]}`;
  if (ctx.method === 'GET' || ctx.method === 'HEAD') return ctx.url;
  const account = /^\/account\/([\w-]+)\//.exec(ctx.path);
  if (account) return account[1] === 'apps' ? '/account/sessions' : `/account/${account[1]}`;
  const opsClient = /^\/ops\/clients\/([\w-]+)\//.exec(ctx.path);
  if (opsClient) return `/ops/clients/${opsClient[1]}`;
  if (ctx.path === '/ops/clients') return '/ops/clients/new';
  return ctx.path;
}

function withLang(url: string, locale: Locale): string {
  const parsed = new URL(url, 'http://x');
  parsed.searchParams.set('lang', locale);
  return `${parsed.pathname}${parsed.search}`;
}

export interface LanguageLink {
  locale: Locale;
  /** The language's own name ("Deutsch"), from its own catalogue. */
  name: string;
  href: string;
  current: boolean;
}

export function languageLinks(ctx: Context, current: Locale): LanguageLink[] {
  const url = pageUrl(ctx);
  return LOCALES.map((locale) => ({ locale, name: catalogue(locale)['lang.name'], href: withLang(url, locale), current: locale === current }));
}

export interface FieldOptions {
  /** The id of the field's hint text, for aria-describedby. */
  hint?: string;
  /** Focus this field when the page has no error tied to a field. */
  autofocus?: boolean;
}

/**
 * `field(name, options)` → the accessibility attributes of one input: a field the error is about gets
 * aria-invalid and aria-describedby pointing at the error summary (#form-error); the first such field
 * gets the focus (autofocus: no script needed), otherwise the field marked autofocus does.
 */
export function fieldHelper(error: unknown, errorField: unknown): (name: string, options?: FieldOptions) => string {
  const invalid = error ? (Array.isArray(errorField) ? (errorField as string[]) : typeof errorField === 'string' ? [errorField] : []) : [];
  return (name, options = {}) => {
    const isInvalid = invalid.includes(name);
    const ids = [isInvalid ? 'form-error' : undefined, options.hint].filter(Boolean);
    const focus = invalid.length ? invalid[0] === name : Boolean(options.autofocus);
    return [ids.length ? `aria-describedby="${ids.join(' ')}"` : '', isInvalid ? 'aria-invalid="true"' : '', focus ? 'autofocus' : ''].filter(Boolean).join(' ');
  };
}

export async function render(ctx: Context, view: string, data: Record<string, unknown> = {}, status = 200): Promise<void> {
  const locale = pageLocale(ctx);
  const brand = (ctx.state.brand as BrandView | undefined) ?? { name: '', hasLogo: false, version: '0' };
  const html = await ejs.renderFile(
    path.join(VIEWS_DIR, `${view}.ejs`),
    {
      t: translator(locale),
      locale,
      brand,
      languages: languageLinks(ctx, locale),
      csrfToken: ctx.state.csrfToken ?? '',
      progress: undefined,
      errorField: undefined,
      field: fieldHelper(data.error, data.errorField),
      ...data,
    },
    { cache: true, views: [VIEWS_DIR] },
  );
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = html;
}
