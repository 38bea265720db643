// Locale negotiation (ui_locales, then Accept-Language, then English) and message lookup.
import { de } from './de.js';
import { en, type MessageKey } from './en.js';

export const LOCALES = ['en', 'de'] as const;
export type Locale = (typeof LOCALES)[number];
const catalogues: Record<Locale, Record<MessageKey, string>> = { en, de };

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;
export type { MessageKey };

function supported(tag: string): Locale | undefined {
  const base = tag.trim().toLowerCase().split(/[-_]/)[0];
  return LOCALES.find((l) => l === base);
}

/** Picks the page language: the RP's ui_locales first, then the user's saved language, then Accept-Language. */
export function negotiateLocale(options: { uiLocales?: string | undefined; saved?: string | undefined; acceptLanguage?: string | undefined }): Locale {
  for (const tag of options.uiLocales?.split(/\s+/) ?? []) {
    const l = supported(tag);
    if (l) return l;
  }
  const saved = options.saved && supported(options.saved);
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
    const l = supported(tag);
    if (l) return l;
  }
  return 'en';
}

export function translator(locale: Locale): Translate {
  const catalogue = catalogues[locale];
  // A string that is not a key (a domain error's plain-English message) is shown as it is.
  return (key, params) => (Object.hasOwn(catalogue, key) ? catalogue[key] : String(key)).replace(/\{(\w+)\}/g, (m, name: string) => (params && name in params ? String(params[name]) : m));
}

export function catalogueKeys(locale: Locale): string[] {
  return Object.keys(catalogues[locale]).sort();
}
