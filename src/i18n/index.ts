// Locale negotiation and message lookup. The page language is, in this order: the language picked with
// the switcher on the page (a `lang` cookie), the app's ui_locales, the user's saved language, the
// browser's Accept-Language, English. Mail to a user: the saved language, else the language of the page
// the mail was triggered from (see pageLocaleScope), else English.
import { AsyncLocalStorage } from 'node:async_hooks';
import { de } from './de.js';
import { en, type MessageKey } from './en.js';

export const LOCALES = ['en', 'de'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';
const catalogues: Record<Locale, Record<MessageKey, string>> = { en, de };

export type MessageParams = Record<string, string | number>;
export type Translate = (key: MessageKey, params?: MessageParams) => string;
export type { MessageKey };

/** The supported locale a language tag (en, de-DE, de_AT) stands for, if any. */
export function supportedLocale(tag: string | null | undefined): Locale | undefined {
  if (!tag) return undefined;
  const base = tag.trim().toLowerCase().split(/[-_]/)[0];
  return LOCALES.find((l) => l === base);
}

export interface LocaleSources {
  /** Picked by the person with the language switcher (the `lang` cookie or query parameter). */
  chosen?: string | undefined;
  /** The app's ui_locales parameter (space-separated, in order of preference). */
  uiLocales?: string | undefined;
  /** The user's saved language (null: never chosen). */
  saved?: string | null | undefined;
  acceptLanguage?: string | undefined;
}

/** Picks the page language from the sources in the order of LocaleSources. */
export function negotiateLocale(options: LocaleSources): Locale {
  const chosen = supportedLocale(options.chosen);
  if (chosen) return chosen;
  for (const tag of options.uiLocales?.split(/\s+/) ?? []) {
    const l = supportedLocale(tag);
    if (l) return l;
  }
  const saved = supportedLocale(options.saved);
  if (saved) return saved;
  const ranked = (options.acceptLanguage ?? '')
    .split(',')
    .map((part) => {
      const [tag = '', ...params] = part.split(';');
      const q = Number(params.find((p) => p.trim().startsWith('q='))?.trim().slice(2) ?? 1);
      return { tag, q: Number.isFinite(q) ? q : 0 };
    })
    .filter((x) => x.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of ranked) {
    const l = supportedLocale(tag);
    if (l) return l;
  }
  return DEFAULT_LOCALE;
}

/** Keys look like `signin.error.invalid`: lower-case words joined by dots. */
export function isMessageKey(text: string): text is MessageKey {
  return /^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(text) && Object.hasOwn(en, text);
}

/** Looks up a message; text that is not a key is passed through as it is. */
export function translator(locale: Locale): Translate {
  const catalogue = catalogues[locale];
  // A string that is not a key (a domain error's plain-English message) is shown as it is.
  return (key, params) => (Object.hasOwn(catalogue, key) ? catalogue[key] : String(key)).replace(/\{(\w+)\}/g, (m, name: string) => (params && name in params ? String(params[name]) : m));
}

export function catalogueKeys(locale: Locale): string[] {
  return Object.keys(catalogues[locale]).sort();
}

/** The raw catalogue (for tests that compare languages). */
export function catalogue(locale: Locale): Readonly<Record<MessageKey, string>> {
  return catalogues[locale];
}

// The language of the page being answered, for mail that domain modules send during the request (an
// admin's invitation, a notice after a change): domain modules know no Koa context.
const pageLocales = new AsyncLocalStorage<() => Locale>();

/** Runs `fn` with `current` as the answer to "which language is this page in?". */
export function pageLocaleScope<T>(current: () => Locale, fn: () => T): T {
  return pageLocales.run(current, fn);
}

/** The language of mail to a user: the saved language, else the current page's, else English. */
export function mailLocale(saved: string | null | undefined): Locale {
  return supportedLocale(saved) ?? pageLocales.getStore()?.() ?? DEFAULT_LOCALE;
}
