// The invitation (an admin adds a user in the console; the user follows the mail through four steps) and
// "Forgot password?", in the browser.
import { expect } from 'chai';
import { resetData, testEnv } from '../support/env.js';
import { makeUser, PASSWORD } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { checkPage, focusedId, linkIn, setUpRelyingParty, signInToConsole, usePages } from './support.js';

const NEW_PASSWORD = 'seven green phones ring twice';

describe('invitation and forgot password in the browser', () => {
  const newPage = usePages();

  beforeEach(async () => {
    await resetData();
  });

  it('an admin invites a user; the user goes email → create password → code → trust (Step 1 to 4 of 4) into the account', async () => {
    await makeUser({ email: 'boss@example.com', owner: true });
    const admin = await newPage();
    await signInToConsole(admin, 'boss@example.com', PASSWORD);
    await admin.page.getByRole('link', { name: 'Users of your company' }).click();
    await admin.page.getByRole('heading', { name: 'Users of your company' }).waitFor();
    await checkPage(admin, 'invite-01-admin-users');

    // A bad address first: the error is tied to the email field, which gets the focus.
    await admin.page.getByLabel('Name', { exact: true }).fill('Nina New');
    await admin.page.getByLabel('Email address', { exact: true }).fill('not an address');
    await admin.page.getByRole('button', { name: 'Create user and send invitation' }).click();
    expect(await admin.page.getByRole('alert').textContent()).to.include('This is not a valid email address.');
    expect(await focusedId(admin.page)).to.equal('email');
    await checkPage(admin, 'invite-02-admin-error');
    await admin.page.getByLabel('Email address', { exact: true }).fill('nina@example.com');
    await admin.page.getByRole('button', { name: 'Create user and send invitation' }).click();
    await admin.page.getByText('User nina@example.com created. The invitation email is on its way.').waitFor();

    const mail = await mailbox.latest('nina@example.com');
    expect(mail.subject).to.equal('You are invited to your user account');
    const test = await newPage();
    const { page } = test;
    await page.goto(linkIn(mail.text));
    await page.getByRole('heading', { name: 'Welcome' }).waitFor();
    await page.getByText('Step 1 of 4: enter the email address your invitation was sent to.').waitFor();
    await checkPage(test, 'invite-03-email');
    await page.getByLabel('Email address', { exact: true }).fill('nina@example.com');
    await page.getByRole('button', { name: 'Sign in with email' }).click();

    await page.getByText('Step 2 of 4: choose a password for nina@example.com.').waitFor();
    const password = page.getByLabel('New password');
    expect(await password.getAttribute('autocomplete')).to.equal('new-password');
    await checkPage(test, 'invite-04-create-password');
    // A password the policy refuses: the reason is tied to the field.
    await password.fill('password123');
    await page.getByRole('button', { name: 'Create password' }).click();
    expect(await page.getByRole('alert').textContent()).to.include('This password is too common');
    expect(await page.getByLabel('New password').getAttribute('aria-invalid')).to.equal('true');
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Create password' }).click();

    await page.getByText('Step 3 of 4: enter the code we sent to n•••@example.com').waitFor();
    await checkPage(test, 'invite-05-code');
    await page.getByLabel('Code', { exact: true }).fill(await mailbox.code('nina@example.com'));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('Step 4 of 4').waitFor();
    await checkPage(test, 'invite-06-trust');
    await page.getByRole('button', { name: 'Yes' }).click();

    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    await page.getByText('Signed in as nina@example.com').waitFor();
    await checkPage(test, 'invite-07-account');
    expect(await testEnv().db('users').where({ email: 'nina@example.com' }).first()).to.include({ status: 'active', email_verified: true });
  });

  it('forgot password: the link from the mail sets a new password, which then signs in', async () => {
    await makeUser({ email: 'forgetful@example.com' });
    const rp = await setUpRelyingParty();
    const test = await newPage();
    const { page } = test;
    await page.goto(`${rp.url}/login`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByRole('heading', { name: 'Forgot password?' }).waitFor();
    await checkPage(test, 'forgot-01-form');
    await page.getByLabel('Email address', { exact: true }).fill('forgetful@example.com');
    await page.getByRole('button', { name: 'Send link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account exists for this address' }).waitFor();
    await checkPage(test, 'forgot-02-sent');

    const mail = await mailbox.latest('forgetful@example.com');
    expect(mail.subject).to.equal('Set a new password');
    await page.goto(linkIn(mail.text));
    await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
    expect(await page.getByLabel('New password').getAttribute('autocomplete')).to.equal('new-password');
    expect(await page.locator('input[name=username]').getAttribute('value')).to.equal('forgetful@example.com');
    await checkPage(test, 'forgot-03-new-password');
    await page.getByLabel('New password').fill('forgetful');
    await page.getByRole('button', { name: 'Save password' }).click();
    expect(await page.getByRole('alert').textContent()).to.include('must not contain your name or email address');
    expect(await focusedId(page)).to.equal('password');
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Save password' }).click();
    await page.getByText('Your password has been changed').waitFor();
    await checkPage(test, 'forgot-04-done');

    // The new password works in the app's sign-in.
    await page.goto(`${rp.url}/login`);
    await page.getByLabel('Email address or customer number').fill('forgetful@example.com');
    await page.getByLabel('Password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code', { exact: true }).fill(await mailbox.code('forgetful@example.com'));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'No' }).click();
    await page.getByRole('heading', { name: 'Signed in as forgetful@example.com' }).waitFor();
  });
});
