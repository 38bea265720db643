// Two-factor authentication with an authenticator app set up in the browser (the QR code read from the
// page, the codes computed by the tests' own RFC 6238 implementation), and "Sign in with Google" against
// the tests' upstream issuer.
import { expect } from 'chai';
import { setGoogleEmail } from '../../src/accounts/google.js';
import { suspendTotpTemporarily } from '../../src/accounts/two-factor.js';
import { findUserById } from '../../src/accounts/users.js';
import { resetData, testEnv } from '../support/env.js';
import { makeUser, PASSWORD } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { totp } from '../support/totp.js';
import { awayFromStepBoundary, BRAND, browserEnv, checkPage, focusedId, readQrCode, setUpRelyingParty, signInToConsole, usePages } from './support.js';

describe('authenticator app and Google in the browser', () => {
  const newPage = usePages();

  beforeEach(async () => {
    await resetData();
    browserEnv().google.reset();
  });

  it('sets up TOTP from the QR code on the page; the next sign-in asks for the app code (Step 2 of 2)', async () => {
    const { user } = await makeUser({ email: 'totp@example.com' });
    const rp = await setUpRelyingParty();
    const test = await newPage();
    const { page } = test;
    await signInToConsole(test, 'totp@example.com', PASSWORD, { shots: 'totp-01-console' });

    await page.getByRole('link', { name: 'Two-Factor Authentication' }).click();
    await page.getByRole('heading', { name: 'Two-Factor Authentication' }).waitFor();
    await checkPage(test, 'totp-02-status');
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await page.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
    await checkPage(test, 'totp-03-setup');

    // What an authenticator app would do: read the QR code, compute the code.
    const uri = new URL(await readQrCode(page));
    expect(uri.protocol).to.equal('otpauth:');
    expect(uri.searchParams.get('issuer')).to.equal(BRAND.name);
    const secret = uri.searchParams.get('secret')!;
    expect(await page.locator('#totp-key').textContent()).to.equal(secret.replace(/(.{4})/g, '$1 ').trim());

    // A wrong code first: the code field is marked and focused.
    await page.getByLabel('Code', { exact: true }).fill('123456');
    await page.getByLabel('Device name').fill("Jane's phone");
    await page.getByRole('button', { name: 'Complete activation' }).click();
    expect(await page.getByRole('alert').textContent()).to.include('The code is not correct.');
    expect(await focusedId(page)).to.equal('code');
    expect(await page.getByLabel('Device name').inputValue()).to.equal("Jane's phone");
    await checkPage(test, 'totp-04-wrong-code');

    await awayFromStepBoundary();
    await page.getByLabel('Code', { exact: true }).fill(totp(secret));
    await page.getByRole('button', { name: 'Complete activation' }).click();
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    expect(await page.locator('#recovery-codes li').count()).to.equal(10);
    await checkPage(test, 'totp-05-recovery-codes');

    // Sign in to the app in another browser: password, then the code from the app.
    const other = await newPage();
    await other.page.goto(`${rp.url}/login`);
    await other.page.getByLabel('Email address or customer number').fill('totp@example.com');
    await other.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await other.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await other.page.getByRole('heading', { name: 'Two-Factor Authentication' }).waitFor();
    await other.page.getByText("Step 2 of 2: enter the 6-digit code from your authenticator app (Jane's phone).").waitFor();
    const code = other.page.getByLabel('Code', { exact: true });
    expect(await code.getAttribute('inputmode')).to.equal('numeric');
    expect(await code.getAttribute('autocomplete')).to.equal('one-time-code');
    expect(await focusedId(other.page)).to.equal('code');
    await checkPage(other, 'totp-06-signin-code');
    // The activation used the current time step; the next one is within the allowed drift and unused.
    await code.fill(totp(secret, 1));
    await other.page.getByRole('button', { name: 'Continue' }).click();
    await other.page.getByRole('heading', { name: 'Signed in as totp@example.com' }).waitFor();
    expect(await other.page.locator('#amr').textContent()).to.equal('pwd otp mfa');

    // Support switches the app off for a day: email code (Step 2 of 3), then the re-enrolment page (Step 3 of 3).
    const services = browserEnv().idp.app.services;
    await suspendTotpTemporarily(services, (await findUserById(testEnv().db, user.id))!, { kind: 'operator' }, 24, {});
    const third = await newPage();
    await third.page.goto(`${rp.url}/login`);
    await third.page.getByLabel('Email address or customer number').fill('totp@example.com');
    await third.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await third.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await third.page.getByText('Step 2 of 3: enter the code we sent to t•••@example.com').waitFor();
    await third.page.getByLabel('Code', { exact: true }).fill(await mailbox.code('totp@example.com'));
    await third.page.getByRole('button', { name: 'Continue' }).click();
    await third.page.getByRole('heading', { name: 'Set up your authenticator app again' }).waitFor();
    await third.page.getByText('Step 3 of 3').waitFor();
    await checkPage(third, 'totp-07-renew');
    await third.page.getByRole('button', { name: 'Later' }).click();
    await third.page.getByRole('heading', { name: 'Signed in as totp@example.com' }).waitFor();
  });

  it('signs in with Google (the tests\' upstream issuer): no email code; an unknown Google account gets a clear page', async () => {
    const { google } = browserEnv();
    await makeUser({ email: 'gina@example.com' });
    await setGoogleEmail(testEnv().db, 'gina@example.com', 'gina.g@gmail.com', { kind: 'operator' }, {});
    google.account = { sub: '109000000000000000042', email: 'gina.g@gmail.com', email_verified: true };
    const rp = await setUpRelyingParty();
    const test = await newPage();
    const { page } = test;

    await page.goto(`${rp.url}/login`);
    await page.getByRole('button', { name: 'Sign in with Google' }).click();
    await page.getByRole('heading', { name: 'Signed in as gina@example.com' }).waitFor();
    expect(await page.locator('#amr').textContent()).to.equal('fed');
    expect(google.lastAuthorization?.get('code_challenge_method')).to.equal('S256');
    expect(mailbox.for('gina@example.com')).to.have.length(0);

    // Another Google account, linked to nobody.
    google.account = { sub: '109000000000000000099', email: 'stranger@gmail.com', email_verified: true };
    const other = await newPage();
    await other.page.goto(`${rp.url}/login`);
    await other.page.getByRole('button', { name: 'Sign in with Google' }).click();
    await other.page.getByRole('heading', { name: 'Signing in with Google did not work' }).waitFor();
    expect(await other.page.getByRole('alert').textContent()).to.include('No account is linked to this Google account.');
    await checkPage(other, 'google-01-no-account');
    await other.page.getByRole('link', { name: 'Back to sign in with password' }).click();
    await other.page.getByLabel('Email address or customer number').waitFor();
  });
});
