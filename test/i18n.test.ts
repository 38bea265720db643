// Languages and branding without a browser: the catalogues are complete in both languages and every key
// the code and the views use exists; domain errors are catalogue keys; the language rules; the switcher;
// mail in the page's language; BRAND_COLOR and BRAND_LOGO_PATH.
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startServer } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { DomainError, describeError, englishError } from '../src/errors.js';
import { contrastRatio } from '../src/http/brand.js';
import { fieldHelper } from '../src/http/render.js';
import { catalogue, catalogueKeys, isMessageKey, mailLocale, negotiateLocale, pageLocaleScope, translator } from '../src/i18n/index.js';
import { sendInvitation } from '../src/accounts/lifecycle.js';
import { findUserByEmail } from '../src/accounts/users.js';
import { Browser } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeUser } from './support/fixtures.js';
import { mailbox } from './support/smtp.js';

function filesUnder(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? filesUnder(file, ext) : ext.test(name) ? [file] : [];
  });
}

describe('message catalogues', () => {
  const en = catalogue('en');
  const de = catalogue('de');

  it('English and German have the same keys, no empty texts and the same placeholders', () => {
    expect(catalogueKeys('de')).to.deep.equal(catalogueKeys('en'));
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of catalogueKeys('en') as (keyof typeof en)[]) {
      expect(en[key].trim(), key).not.to.equal('');
      expect(de[key].trim(), key).not.to.equal('');
      expect(placeholders(de[key]), key).to.deep.equal(placeholders(en[key]));
    }
  });

  it('every key the views use exists (views are not type-checked)', () => {
    const missing: string[] = [];
    for (const file of filesUnder('views', /\.ejs$/)) {
      for (const match of readFileSync(file, 'utf8').matchAll(/\bt\('([a-z0-9_.]+)'/g)) {
        // A key ending in "." is a prefix completed in the view (t('ops.kind.' + kind)).
        if (!match[1]!.endsWith('.') && !isMessageKey(match[1]!)) missing.push(`${file}: ${match[1]}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });

  it('domain errors and validation messages are catalogue keys, so pages show them in their language', () => {
    // The CLI (src/cli/) speaks English only and keeps its usage texts in code; so do the start-up
    // errors of the configuration (src/config.ts), which only operators see.
    const offending: string[] = [];
    const englishOnly = [path.join('src', 'cli'), path.join('src', 'config.ts')];
    for (const file of filesUnder('src', /\.ts$/).filter((f) => !englishOnly.some((prefix) => f.startsWith(prefix)))) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/new DomainError\(\s*[^,]+,\s*([^,]+?)(?:,|\);)/g)) {
        const message = match[1]!.trim();
        if (message === '`password.error.${problem}`') continue; // password-policy.ts: one key per problem
        // Catalogue keys (and maybe plain words compared in a condition), never a sentence.
        const keys = [...message.matchAll(/'([^']*)'/g)].map((m) => m[1]!).filter((l) => l.includes('.') || /\s|[A-Z]/.test(l));
        if (!keys.length || /[`"]/.test(message) || keys.some((l) => !isMessageKey(l))) offending.push(`${file}: ${message}`);
      }
      // zod messages given as the second argument of min/max/regex/email/enum
      for (const match of source.matchAll(/\.(?:min|max|regex|email|enum)\([^()]*?,\s*'([^']+)'\)/g)) {
        if (!isMessageKey(match[1]!)) offending.push(`${file}: zod message '${match[1]}'`);
      }
    }
    expect(offending).to.deep.equal([]);
  });

  it('every audit event about a user has a label in the security log', () => {
    const operatorOnly = new Set(['client.deleted', 'client.iat_created', 'client.registered', 'client.secret_rotated', 'client.updated', 'customer.created', 'keys.rotated', 'ops.sign_in_failed', 'ops.signed_in', 'ops.throttled', 'resource.created', 'resource.deleted']);
    const types = new Set<string>();
    for (const file of filesUnder('src', /\.ts$/)) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/type: '([a-z_]+\.[a-z_.]+)'/g)) types.add(match[1]!);
      for (const match of source.matchAll(/record\(ctx, '([a-z_.]+)'/g)) types.add(match[1]!);
    }
    const unlabelled = [...types].filter((type) => !operatorOnly.has(type) && !isMessageKey(`log.event.${type}`));
    expect(unlabelled).to.deep.equal([]);
  });

  it('a domain error is shown in the page language, the CLI gets English, and names in it are translated too', () => {
    const error = new DomainError('invalid_redirect_uri', 'client.error.fragment', 400, { field: { key: 'client.field.redirect_uri' }, value: 'https://a/#x' });
    expect(englishError(error)).to.equal('The redirect URI "https://a/#x" must not contain a fragment (#).');
    expect(describeError(error, translator('de'))).to.equal('Die Redirect-URI „https://a/#x“ darf kein Fragment (#) enthalten.');
  });
});

describe('page language', () => {
  it('switcher, then the app\'s ui_locales, then the saved language, then Accept-Language, then English', () => {
    const all = { chosen: 'en', uiLocales: 'de', saved: 'de', acceptLanguage: 'de-DE' };
    expect(negotiateLocale(all)).to.equal('en');
    expect(negotiateLocale({ ...all, chosen: undefined, uiLocales: 'fr-CA en' })).to.equal('en');
    expect(negotiateLocale({ uiLocales: 'fr', saved: 'de', acceptLanguage: 'en' })).to.equal('de');
    expect(negotiateLocale({ saved: null, acceptLanguage: 'fr;q=0.9, de-AT;q=0.8, en;q=0.5' })).to.equal('de');
    expect(negotiateLocale({ acceptLanguage: 'fr, es' })).to.equal('en');
    expect(negotiateLocale({ chosen: 'xx', acceptLanguage: 'de' })).to.equal('de');
  });

  it('mail to a user: the saved language, else the language of the page being answered, else English', () => {
    expect(mailLocale('de')).to.equal('de');
    expect(mailLocale(null)).to.equal('en');
    expect(pageLocaleScope(() => 'de', () => mailLocale(null))).to.equal('de');
    expect(pageLocaleScope(() => 'de', () => mailLocale('en'))).to.equal('en');
  });

  it('field(): only the fields an error is about are invalid and described by it; the first one gets the focus', () => {
    const field = fieldHelper('wrong', ['identifier', 'password']);
    expect(field('identifier', { autofocus: false })).to.equal('aria-describedby="form-error" aria-invalid="true" autofocus');
    expect(field('password', { hint: 'pw-hint', autofocus: true })).to.equal('aria-describedby="form-error pw-hint" aria-invalid="true"');
    expect(field('other', { autofocus: true })).to.equal('');
    const clean = fieldHelper(undefined, 'identifier');
    expect(clean('identifier', { autofocus: true, hint: 'h' })).to.equal('aria-describedby="h" autofocus');
  });

  describe('on the running server', () => {
    beforeEach(resetData);

    it('every page has the switcher; ?lang= switches and is remembered in a cookie, without JavaScript', async () => {
      const browser = new Browser({ 'accept-language': 'en' });
      const english = await browser.go(`${testEnv().url}/password/forgot?interaction=abcdefghijklmnop`);
      expect(english.html).to.include('<html lang="en">').and.include('<nav class="lang" aria-label="Language">');
      expect(english.html).to.include('<a href="/password/forgot?interaction=abcdefghijklmnop&amp;lang=de" lang="de" hreflang="de">Deutsch</a>');
      expect(english.html).to.include('<span lang="en" aria-current="true">English</span>');
      const german = await browser.go(`${testEnv().url}/password/forgot?interaction=abcdefghijklmnop&lang=de`);
      expect(german.html).to.include('<html lang="de">').and.include('Passwort vergessen?');
      expect(german.headers.getSetCookie().find((c) => c.startsWith('idp_lang='))).to.match(/^idp_lang=de; path=\/; expires=[^;]+; samesite=lax; httponly$/);
      // Remembered: the next page is German too although the browser asks for English.
      expect((await browser.go(`${testEnv().url}/interaction/unknown-interaction-1`)).html).to.include('<html lang="de">');
      // A page answered to a POST links back to its GET page.
      const posted = await browser.go(`${testEnv().url}/password/forgot`, { method: 'POST', body: new URLSearchParams({ email: 'x' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(posted.status).to.equal(403); // no CSRF token: the error page
      expect(posted.html).to.include('href="/password/forgot?lang=en"');
    });

    it('an admin\'s invitation goes out in the admin\'s page language when the new user has no saved language', async () => {
      await makeUser({ email: 'neu@example.com', password: null });
      const user = (await findUserByEmail(testEnv().db, 'neu@example.com'))!;
      expect(user.locale).to.equal(null);
      await pageLocaleScope(() => 'de', () => sendInvitation(testEnv().server.app.services, user, { name: 'Chefin' }));
      expect((await mailbox.latest('neu@example.com')).subject).to.equal(translator('de')('mail.invite.subject'));
    });

    it('serves the stylesheet with the default brand colours; no logo without BRAND_LOGO_PATH', async () => {
      const css = await (await fetch(`${testEnv().url}/static/style.css`)).text();
      expect(css).to.match(/^:root \{ --brand: #0b5cad; --brand-dark: #[0-9a-f]{6}; --brand-tint: #[0-9a-f]{6}; --focus: #[0-9a-f]{6}; \}/);
      expect((await fetch(`${testEnv().url}/static/logo`)).status).to.equal(404);
    });
  });
});

describe('branding settings', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'idp-brand-'));

  it('BRAND_COLOR must be a hex colour with at least 4.5:1 contrast against white', () => {
    expect(loadConfig({ DATA_DIR: dir, BRAND_COLOR: '#C00' }).brandColor).to.equal('#cc0000');
    expect(() => loadConfig({ DATA_DIR: dir, BRAND_COLOR: 'purple' })).to.throw(ConfigError, /BRAND_COLOR must be a hex colour/);
    expect(() => loadConfig({ DATA_DIR: dir, BRAND_COLOR: '#ffcc00' })).to.throw(ConfigError, /contrast of 1\.\d:1 against white/);
    expect(contrastRatio('#0b5cad', '#ffffff')).to.be.greaterThan(4.5);
  });

  it('BRAND_LOGO_PATH must be a readable PNG or SVG; it is served at /static/logo', async () => {
    const svg = path.join(dir, 'logo.svg');
    writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>');
    const text = path.join(dir, 'logo.txt');
    writeFileSync(text, 'not an image');
    expect(loadConfig({ DATA_DIR: dir, BRAND_LOGO_PATH: svg }).brandLogoPath).to.equal(svg);
    expect(() => loadConfig({ DATA_DIR: dir, BRAND_LOGO_PATH: text })).to.throw(ConfigError, /neither a PNG nor an SVG/);
    expect(() => loadConfig({ DATA_DIR: dir, BRAND_LOGO_PATH: path.join(dir, 'missing.png') })).to.throw(ConfigError, /cannot read/);

    const server = await startServer(
      { ...testEnv().config, port: 0, brandName: 'Acme', brandColor: '#6a1b9a', brandLogoPath: svg },
      { db: testEnv().db, log: createLogger('silent'), issuerForPort: (port) => `http://127.0.0.1:${port}` },
    );
    try {
      const logo = await fetch(`${server.url}/static/logo`);
      expect(logo.headers.get('content-type')).to.equal('image/svg+xml');
      expect(logo.headers.get('content-security-policy')).to.include('sandbox');
      expect(await logo.text()).to.include('<svg');
      expect(await (await fetch(`${server.url}/static/style.css`)).text()).to.match(/^:root \{ --brand: #6a1b9a;/);
      const page = await (await fetch(`${server.url}/password/forgot`)).text();
      expect(page).to.match(/<img class="logo" src="\/static\/logo\?v=[\w-]{12}" alt="Acme">/);
      expect(page).to.match(/<link rel="stylesheet" href="\/static\/style.css\?v=[\w-]{12}">/);
      expect(page).to.include('<title>Forgot password? · Acme</title>');
    } finally {
      await server.close();
    }
  });
});
