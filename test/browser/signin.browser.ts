// The sign-in as a person does it in Chromium: from the app to the provider and back, found by labels
// and roles (DESIGN §5 wording), keyboard only where it says so.
import { expect } from 'chai';
import { resetData, testEnv } from '../support/env.js';
import { makeUser, PASSWORD } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { checkPage, focusedId, openPage, setUpRelyingParty, type PageElement, type PageWindow, type TestPage } from './support.js';

describe('sign-in in the browser', () => {
  let test: TestPage;

  beforeEach(async () => {
    await resetData();
  });

  afterEach(async () => {
    await test?.context.close();
  });

  it('password, email code from the mail, trust the device, back in the app; the next sign-in skips the code (keyboard only)', async () => {
    await makeUser({ email: 'jane@example.com' });
    const rp = await setUpRelyingParty();
    test = await openPage();
    const { page } = test;

    await page.goto(rp.url);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await checkPage(test, 'signin-01-password', { lang: 'en' });

    // The identifier field has the focus; the fields say what they are for password managers.
    const identifier = page.getByLabel('Email address or customer number');
    const password = page.getByLabel('Password', { exact: true });
    expect(await focusedId(page)).to.equal('identifier');
    expect(await identifier.getAttribute('autocomplete')).to.equal('username');
    expect(await password.getAttribute('autocomplete')).to.equal('current-password');
    await page.keyboard.type('jane@example.com');
    await page.keyboard.press('Tab');
    expect(await focusedId(page)).to.equal('password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');

    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    await expectText(page, 'Step 2 of 3: enter the code we sent to j•••@example.com');
    const code = page.getByLabel('Code', { exact: true });
    expect(await focusedId(page)).to.equal('code');
    expect(await code.getAttribute('autocomplete')).to.equal('one-time-code');
    expect(await code.getAttribute('inputmode')).to.equal('numeric');
    await checkPage(test, 'signin-02-email-code', { lang: 'en' });
    await page.keyboard.type(await mailbox.code('jane@example.com'));
    await page.keyboard.press('Enter');

    await page.getByRole('heading', { name: 'Do you trust this browser and device?' }).waitFor();
    await expectText(page, 'Step 3 of 3');
    await checkPage(test, 'signin-03-trust', { lang: 'en' });
    // Keyboard: Tab from the top of the page to "Yes" (skipping the language links), Enter.
    await tabTo(page, 'Yes');
    // The keyboard focus is visible: a ring at least 2 px wide.
    const ring = await page.evaluate(() => {
      const win = globalThis as unknown as PageWindow;
      const style = win.getComputedStyle(win.document.activeElement!);
      return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    expect(ring.style).to.equal('solid');
    expect(ring.width).to.be.at.least(2);
    await page.screenshot({ path: 'test-output/screenshots/signin-03b-trust-keyboard-focus.png' });
    await page.keyboard.press('Enter');

    await page.getByRole('heading', { name: 'Signed in as jane@example.com' }).waitFor();
    expect(await page.locator('#amr').textContent()).to.equal('pwd mca mfa');
    await page.screenshot({ path: 'test-output/screenshots/signin-04-back-in-the-app.png' });

    // A new sign-in in the same browser (prompt=login): password only, the trusted browser skips the code.
    const mails = mailbox.for('jane@example.com').length;
    await page.getByRole('link', { name: 'Sign in again' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Email address or customer number').fill('jane@example.com');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Signed in as jane@example.com' }).waitFor();
    expect(await page.locator('#amr').textContent()).to.equal('pwd');
    expect(mailbox.for('jane@example.com')).to.have.length(mails);
  });

  it('a wrong password: the error is announced, tied to the fields, and the first of them has the focus', async () => {
    await makeUser({ email: 'typo@example.com' });
    const rp = await setUpRelyingParty();
    test = await openPage();
    const { page } = test;
    await page.goto(`${rp.url}/login`);
    await page.getByLabel('Email address or customer number').fill('typo@example.com');
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();

    const alert = page.getByRole('alert');
    expect(await alert.textContent()).to.include('The email address, customer number or password is not correct.');
    for (const id of ['identifier', 'password']) {
      const field = page.locator(`#${id}`);
      expect(await field.getAttribute('aria-invalid'), id).to.equal('true');
      expect(await field.getAttribute('aria-describedby'), id).to.include('form-error');
    }
    expect(await focusedId(page)).to.equal('identifier');
    // The accessible description of the field is the error text.
    const description = await page.locator('#identifier').evaluate((el) => {
      const ids = ((el as unknown as PageElement).getAttribute('aria-describedby') ?? '').split(' ');
      return ids.map((id) => (globalThis as unknown as PageWindow).document.getElementById(id)?.textContent?.trim()).join(' ');
    });
    expect(description).to.include('is not correct');
    await checkPage(test, 'signin-05-wrong-password', { lang: 'en' });

    // A wrong email code: the code field is the invalid one.
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code', { exact: true }).fill('000000');
    await page.getByRole('button', { name: 'Continue' }).click();
    expect(await page.getByRole('alert').textContent()).to.include('The code is not correct.');
    expect(await page.locator('#code').getAttribute('aria-invalid')).to.equal('true');
    expect(await focusedId(page)).to.equal('code');
    await checkPage(test, 'signin-06-wrong-code', { lang: 'en' });
  });

  it('works at 320 px width: the whole sign-in without horizontal scrolling', async () => {
    await makeUser({ email: 'narrow@example.com' });
    const rp = await setUpRelyingParty();
    test = await openPage({ width: 320 });
    const { page } = test;
    await page.goto(`${rp.url}/login`);
    await checkPage(test, 'narrow-01-password');
    await page.getByLabel('Email address or customer number').fill('narrow@example.com');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code', { exact: true }).fill(await mailbox.code('narrow@example.com'));
    await checkPage(test, 'narrow-02-email-code');
    await page.getByRole('button', { name: 'Continue' }).click();
    await checkPage(test, 'narrow-03-trust');
    await page.getByRole('button', { name: 'No' }).click();
    await page.getByRole('heading', { name: 'Signed in as narrow@example.com' }).waitFor();
    expect(await testEnv().db('trusted_devices')).to.have.length(0);
  });
});

async function expectText(page: TestPage['page'], text: string): Promise<void> {
  await page.getByText(text, { exact: false }).first().waitFor();
}

/** Presses Tab until the button or link named `name` has the focus (at most 20 times). */
export async function tabTo(page: TestPage['page'], name: string): Promise<void> {
  for (let i = 0; i < 20; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => (globalThis as unknown as PageWindow).document.activeElement?.textContent?.trim());
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}
