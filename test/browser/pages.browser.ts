// A tour of the pages at 320 px width, in English and in German: the sign-in with consent, the account
// console, the operator pages, "Forgot password?", logout and an error page. Each page gets a screenshot
// and the axe-core, reflow, language and CSP checks of checkPage. Labels and names come from the
// language's catalogue, so the German tour also shows that German pages carry German wording.
import { expect } from 'chai';
import { translator, type Locale } from '../../src/i18n/index.js';
import { resetData } from '../support/env.js';
import { makeUser, PASSWORD } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { checkPage, linkIn, openPage, OPS_TOKEN, setUpRelyingParty, url, type TestPage } from './support.js';

describe('every page, at 320 px, in English and German', () => {
  let test: TestPage | undefined;

  beforeEach(async () => {
    await resetData();
  });

  afterEach(async () => {
    await test?.context.close();
  });

  for (const locale of ['en', 'de'] as const satisfies Locale[]) {
    it(`${locale}: sign-in with consent, console, operator pages, forgot password, logout, errors`, async function () {
      this.timeout(120_000);
      const t = translator(locale);
      await makeUser({ email: `tour-${locale}@example.com`, owner: true });
      const email = `tour-${locale}@example.com`;
      const rp = await setUpRelyingParty({ firstParty: false, name: 'Partner CRM' });
      test = await openPage({ locale: locale === 'de' ? 'de-DE' : 'en-GB', width: 320 });
      const { page } = test;
      let n = 0;
      const shot = (name: string) => checkPage(test!, `tour-${locale}-${String(++n).padStart(2, '0')}-${name}`, { lang: locale });
      const heading = (name: string) => page.getByRole('heading', { name, exact: true }).waitFor();
      const button = (name: string) => page.getByRole('button', { name, exact: true });

      // A sign-in page reached with a stale link: a clear error page.
      await page.goto(url('/interaction/no-such-sign-in'));
      await heading(t('error.heading'));
      await shot('error');

      // The sign-in of a third-party app, with the consent page.
      await page.goto(`${rp.url}/login`);
      await heading(t('signin.heading'));
      await shot('signin');
      await page.getByLabel(t('signin.identifier')).fill(email);
      await page.getByLabel(t('signin.password'), { exact: true }).fill(PASSWORD);
      await button(t('signin.submit')).click();
      await heading(t('code.heading'));
      await shot('code');
      await page.getByLabel(t('code.label'), { exact: true }).fill(await mailbox.code(email));
      await button(t('code.submit')).click();
      await heading(t('trust.heading'));
      await shot('trust');
      await button(t('trust.no')).click();
      await heading(t('consent.heading'));
      await shot('consent');
      await button(t('consent.allow')).click();
      await page.getByRole('heading', { name: `Signed in as ${email}` }).waitFor();

      // The account console (same browser: already signed in).
      await page.goto(url('/account'));
      await heading(t('console.heading'));
      await shot('console');
      for (const [path, title] of [
        ['/account/profile', t('profile.heading')],
        ['/account/password', t('change.heading')],
        ['/account/2fa', t('totp.heading')],
        ['/account/devices', t('devices.heading')],
        ['/account/sessions', t('sessions.heading')],
        ['/account/device-credentials', t('device.heading')],
        ['/account/security-log', t('log.heading')],
        ['/account/secure', t('secure.heading')],
        ['/account/users', t('console.users.heading')],
      ] as const) {
        await page.goto(url(path));
        await heading(title);
        await shot(path.slice('/account/'.length));
      }
      await page.goto(url('/account/2fa'));
      await button(t('totp.start')).click();
      await page.getByRole('img', { name: t('totp.setup.qr_alt') }).waitFor();
      await shot('2fa-setup');
      await page.goto(url('/account/device-credentials'));
      await page.getByLabel(t('device.label')).fill('Desk phone');
      await button(t('device.create')).click();
      await page.getByText(t('device.shown_once')).waitFor();
      await shot('device-credential-issued');
      await page.goto(url('/account/password'));
      await page.getByLabel(t('change.current')).fill('not my password');
      await page.getByLabel(t('change.new')).fill('a brand new passphrase');
      await button(t('change.submit')).click();
      await page.getByRole('alert').waitFor();
      expect(await page.locator('#current_password').getAttribute('aria-invalid')).to.equal('true');
      await shot('password-error');

      // The operator pages.
      await page.goto(url('/ops/login'));
      await heading(t('ops.login.heading'));
      await shot('ops-login');
      await page.getByLabel(t('ops.login.token')).fill(OPS_TOKEN);
      await button(t('ops.login.submit')).click();
      await heading(t('ops.clients.heading'));
      await shot('ops-clients');
      await page.getByRole('link', { name: t('ops.nav.new') }).click();
      await heading(t('ops.new.heading'));
      await shot('ops-new');
      await page.getByLabel(t('ops.field.name'), { exact: true }).fill('Softphone');
      await page.getByLabel(t('ops.field.redirect_uris'), { exact: true }).fill('http://softphone.example.com/cb');
      await button(t('ops.new.submit')).click();
      await page.getByRole('alert').waitFor();
      expect(await page.locator('#redirect_uris').getAttribute('aria-invalid')).to.equal('true');
      await shot('ops-new-error');
      await page.getByLabel(t('ops.field.redirect_uris'), { exact: true }).fill('https://softphone.example.com/cb');
      await button(t('ops.new.submit')).click();
      await heading(t('ops.secret.heading_created'));
      await shot('ops-secret');
      await page.getByRole('link', { name: t('ops.secret.back') }).click();
      await heading('Softphone');
      await shot('ops-client');

      // Logout (RP-initiated logout's confirmation page and the page after it).
      await page.goto(url('/session/end'));
      await heading(t('logout.heading'));
      await shot('logout');
      await button(t('logout.yes')).click();
      await heading(t('logout.done.heading'));
      await shot('logout-done');

      // "Forgot password?" and the page of the link in the mail.
      await page.goto(url('/password/forgot'));
      await heading(t('forgot.heading'));
      await shot('forgot');
      await page.getByLabel(t('forgot.email'), { exact: true }).fill(email);
      await button(t('forgot.submit')).click();
      await page.getByText(t('forgot.sent')).waitFor();
      const mail = await mailbox.latest(email);
      expect(mail.subject).to.equal(t('mail.reset.subject'));
      await page.goto(linkIn(mail.text));
      await heading(t('reset.heading'));
      await shot('reset');
    });
  }
});
