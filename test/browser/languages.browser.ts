// English and German: the page language follows the switcher, then the app's ui_locales, then the
// user's saved language, then the browser's Accept-Language; mail follows the page.
import { expect } from 'chai';
import { resetData, testEnv } from '../support/env.js';
import { makeUser, PASSWORD } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { checkPage, setUpRelyingParty, signInToConsole, usePages } from './support.js';

describe('languages in the browser', () => {
  const newPage = usePages();

  beforeEach(async () => {
    await resetData();
  });

  it('a German browser gets German pages and a German code mail', async () => {
    await makeUser({ email: 'greta@example.com' });
    const rp = await setUpRelyingParty();
    const test = await newPage({ locale: 'de-DE' });
    const { page } = test;
    await page.goto(`${rp.url}/login`);
    await page.getByRole('heading', { name: 'Anmelden' }).waitFor();
    await checkPage(test, 'de-01-anmelden', { lang: 'de' });
    await page.getByLabel('E-Mail-Adresse oder Kundennummer').fill('greta@example.com');
    await page.getByLabel('Passwort', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Anmelden', exact: true }).click();

    await page.getByText('Schritt 2 von 3: Geben Sie den Code ein, den wir an g•••@example.com gesendet haben').waitFor();
    await checkPage(test, 'de-02-code', { lang: 'de' });
    const mail = await mailbox.latest('greta@example.com');
    expect(mail.subject).to.equal('Ihr Anmeldecode');
    await page.getByLabel('Code', { exact: true }).fill(await mailbox.code('greta@example.com'));
    await page.getByRole('button', { name: 'Weiter' }).click();
    await page.getByRole('heading', { name: 'Vertrauen Sie diesem Browser und Gerät?' }).waitFor();
    await checkPage(test, 'de-03-vertrauen', { lang: 'de' });
    await page.getByRole('button', { name: 'Nein' }).click();
    await page.getByRole('heading', { name: 'Signed in as greta@example.com' }).waitFor();
  });

  it('the switcher on the page wins and is remembered by the browser; without JavaScript', async () => {
    await makeUser({ email: 'switch@example.com' });
    const rp = await setUpRelyingParty();
    const test = await newPage({ locale: 'de-DE' });
    const { page } = test;
    await page.goto(`${rp.url}/login?ui_locales=de`);
    const switcher = page.getByRole('navigation', { name: 'Sprache' });
    expect(await switcher.getByText('Deutsch').getAttribute('aria-current')).to.equal('true');
    await switcher.getByRole('link', { name: 'English' }).click();

    await page.getByLabel('Email address or customer number').fill('switch@example.com');
    expect(await page.getAttribute('html', 'lang')).to.equal('en');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // The next page stays English (the browser says German, the app asked for German).
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    expect((await mailbox.latest('switch@example.com')).subject).to.equal('Your sign-in code');
    await page.getByRole('navigation', { name: 'Language' }).getByRole('link', { name: 'Deutsch' }).click();
    await page.getByRole('heading', { name: 'Prüfen Sie Ihre E-Mails' }).waitFor();
    // Switching the language shows the same step again; no second code was sent.
    expect(mailbox.for('switch@example.com')).to.have.length(1);
    await checkPage(test, 'de-04-switched', { lang: 'de' });
  });

  it('the app\'s ui_locales, then the saved language of the user (from the profile page), then the browser', async () => {
    await makeUser({ email: 'saved@example.com' });
    const rp = await setUpRelyingParty();
    // The user saves German on the profile page (an English browser).
    const console = await newPage();
    await signInToConsole(console, 'saved@example.com', PASSWORD);
    await console.page.getByRole('link', { name: 'Profile' }).click();
    await console.page.getByRole('combobox', { name: 'Language' }).selectOption('de');
    await console.page.getByRole('button', { name: 'Save' }).click();
    await console.page.getByText('Ihr Profil wurde gespeichert.').waitFor();
    await checkPage(console, 'de-05-profil', { lang: 'de' });
    expect(await testEnv().db('users').where({ email: 'saved@example.com' }).first()).to.include({ locale: 'de' });

    // Another English browser: the password page is English (nobody identified yet), the code page and
    // the mail German (the saved language).
    const test = await newPage();
    const { page } = test;
    await page.goto(`${rp.url}/login`);
    await page.getByLabel('Email address or customer number').fill('saved@example.com');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Prüfen Sie Ihre E-Mails' }).waitFor();
    expect((await mailbox.latest('saved@example.com')).subject).to.equal('Ihr Anmeldecode');

    // The app's ui_locales=en comes before the saved language.
    const third = await newPage({ locale: 'de-DE' });
    await third.page.goto(`${rp.url}/login?ui_locales=en`);
    await third.page.getByLabel('Email address or customer number').fill('saved@example.com');
    await third.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await third.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await third.page.getByRole('heading', { name: 'Check your email' }).waitFor();

    // Back to "automatic": the browser's language again.
    await console.page.getByRole('combobox', { name: 'Sprache' }).selectOption('');
    await console.page.getByRole('button', { name: 'Speichern' }).click();
    await console.page.getByText('Your profile was saved.').waitFor();
    expect(await testEnv().db('users').where({ email: 'saved@example.com' }).first()).to.include({ locale: null });
  });
});
