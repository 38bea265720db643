import { expect } from 'chai';
import * as oidc from 'openid-client';
import { passwordProblem } from '../src/accounts/password-policy.js';
import { createUser } from '../src/accounts/users.js';
import { runCommand } from '../src/cli/commands.js';
import { Browser, csrfToken, formAction, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { answerTrust, consoleSignIn, isCodePage, isTrustPage, openSignIn, relyingParty, signInAndGetTokens, submitCode, submitPassword } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { post, url } from './support/pages.js';

const NEW_PASSWORD = 'violet tractor umbrella 42';


function linkIn(text: string, path: string): string {
  const match = new RegExp(`(http://127\\.0\\.0\\.1:\\d+${path}/[\\w-]+)`).exec(text);
  if (!match) throw new Error(`no ${path} link in: ${text}`);
  return match[1]!;
}

async function adminWithCustomer() {
  const { user: admin, customer } = await makeUser({ email: 'admin@acme.example', owner: true });
  const browser = new Browser();
  await consoleSignIn(browser, 'admin@acme.example', PASSWORD);
  return { admin, customer, browser };
}

describe('user life cycle', () => {
  beforeEach(resetData);

  describe('password policy', () => {
    it('accepts long passphrases and refuses short, common and personal passwords, saying why', () => {
      expect(passwordProblem('violet tractor umbrella')).to.equal(undefined);
      expect(passwordProblem('short7')).to.equal('too_short');
      expect(passwordProblem('x'.repeat(257))).to.equal('too_long');
      for (const common of ['password', 'Password1', 'iloveyou', 'qwertyuiop', 'football!']) expect(passwordProblem(common), common).to.equal('common');
      expect(passwordProblem('jane.doe-rules', { email: 'jane.doe@example.com' })).to.equal('personal');
      expect(passwordProblem('Margarethe1234', { name: 'Margarethe Schulz' })).to.equal('personal');
    });
  });

  describe('invitations', () => {
    it('an admin creates a user; the invitation leads through email → create password → code → trust into the account', async () => {
      const { browser: adminBrowser, customer } = await adminWithCustomer();
      const users = await adminBrowser.go(url('/account/users'));
      const created = await post(adminBrowser, users, '/account/users', { name: 'Nina Neu', email: 'Nina@Acme.example', role: 'user', google_email: 'nina@gmail.com' });
      expect(created.html).to.include('User nina@acme.example created.');
      const nina = await testEnv().db('users').where({ email: 'nina@acme.example' }).first();
      expect(nina).to.include({ status: 'invited', role: 'user', google_email: 'nina@gmail.com', customer_id: customer.id, password_hash: null });

      const mail = await mailbox.latest('nina@acme.example');
      expect(mail.subject).to.equal('You are invited to your user account');
      expect(mail.html).to.include('Go to User Account');
      const link = linkIn(mail.text, '/invite');

      const browser = new Browser();
      let page = await browser.go(link);
      expect(page.html).to.include('<label for="email">Email address</label>').and.include('Sign in with email');
      page = await post(browser, page, formAction(page.html), { email: 'someone.else@acme.example' });
      expect(page.status).to.equal(400);
      expect(page.html).to.include('This is not the email address this invitation was sent to.');
      page = await post(browser, page, formAction(page.html), { email: 'NINA@acme.example' });
      expect(page.html).to.include('<h1>Create password</h1>').and.include('autocomplete="new-password"');

      for (const [bad, reason] of [
        ['short', 'at least 8 characters'],
        ['password123', 'too common'],
        ['nina-secret-2026', 'must not contain your name or email address'],
      ] as const) {
        const refused = await post(browser, page, formAction(page.html), { password: bad });
        expect(refused.status, bad).to.equal(400);
        expect(refused.html, bad).to.include(reason);
      }
      page = await post(browser, page, formAction(page.html), { password: NEW_PASSWORD });
      expect(isCodePage(page)).to.equal(true);
      page = await submitCode(browser, page, await mailbox.code('nina@acme.example'));
      expect(isTrustPage(page)).to.equal(true);
      page = await answerTrust(browser, page, 'yes');
      expect(page.url).to.equal(url('/account'));
      expect(page.html).to.include('Signed in as nina@acme.example');

      const active = await testEnv().db('users').where({ id: nina.id }).first();
      expect(active).to.include({ status: 'active', email_verified: true });
      const types = (await testEnv().db('audit_events').where({ user_id: nina.id }).orderBy('id')).map((e) => e.type);
      expect(types).to.include.members(['user.created', 'invitation.sent', 'password.created', 'code.verified', 'invitation.accepted', 'login.succeeded']);

      // The link works once.
      const reused = await new Browser().go(link);
      expect(reused.status).to.equal(410);
      expect(reused.html).to.include('This invitation link was already used.');
      // And the new password signs in.
      const rp = await relyingParty(await makeClient());
      const { tokens } = await signInAndGetTokens(rp, 'nina@acme.example', NEW_PASSWORD, {}, new Browser());
      expect(tokens.claims()!.sub).to.equal(nina.id);
    });

    it('refuses tampered and expired links with a clear page; a resend makes the old link stop working', async () => {
      const { user } = await makeUser({ email: 'later@example.com', password: null });
      const ctx = { ...testEnv().server.app.services };
      expect((await runCommand(ctx, ['user', 'invite', '--email', 'later@example.com'])).output).to.include({ invitation_sent: true });
      const first = linkIn((await mailbox.latest('later@example.com')).text, '/invite');
      mailbox.clear();
      await runCommand(ctx, ['user', 'invite', '--email', 'later@example.com']);
      const second = linkIn((await mailbox.latest('later@example.com')).text, '/invite');

      const old = await new Browser().go(first);
      expect(old.status).to.equal(400);
      expect(old.html).to.include('This invitation link is not valid.');
      const tampered = await new Browser().go(`${second.slice(0, -3)}abc`);
      expect(tampered.status).to.equal(400);
      const garbage = await new Browser().go(url('/invite/%27%20OR%201%3D1--'));
      expect(garbage.status).to.equal(400);

      await testEnv().db('user_tokens').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() - 1000) });
      const expired = await new Browser().go(second);
      expect(expired.status).to.equal(410);
      expect(expired.html).to.include('This invitation link has expired.');
    });

    it('`idp user create` without --no-invite mails the invitation; with a password it does not', async () => {
      const ctx = { ...testEnv().server.app.services };
      await runCommand(ctx, ['customer', 'create', '--name', 'CLI Co', '--customer-number', '880088']);
      const invited = await runCommand(ctx, ['user', 'create', '--customer', '880088', '--email', 'cli@example.com', '--name', 'Cli']);
      expect(invited.exitCode).to.equal(0);
      expect(invited.output).to.include({ status: 'invited', invitation_sent: true });
      expect((await mailbox.latest('cli@example.com')).text).to.match(/\/invite\/[\w-]{43}/);
      const withPassword = await runCommand({ ...ctx, stdin: 'a fine long password' }, ['user', 'create', '--customer', '880088', '--email', 'pw@example.com', '--name', 'Pw', '--password-stdin']);
      expect(withPassword.output).to.include({ status: 'active', invitation_sent: false });
      expect(mailbox.for('pw@example.com')).to.have.length(0);
      const noInvite = await runCommand(ctx, ['user', 'create', '--customer', '880088', '--email', 'quiet@example.com', '--name', 'Quiet', '--no-invite']);
      expect(noInvite.output).to.include({ invitation_sent: false });
      expect(mailbox.for('quiet@example.com')).to.have.length(0);
    });
  });

  describe('admin pages: the tenant wall', () => {
    it("an admin can never see or change another customer's users", async () => {
      const { browser } = await adminWithCustomer();
      const { user: stranger } = await makeUser({ email: 'stranger@other.example', password: null });
      const list = await browser.go(url('/account/users'));
      expect(list.html).not.to.include('stranger@other.example');
      for (const action of ['resend', 'disable', 'enable', 'disable-2fa']) {
        const res = await post(browser, list, `/account/users/${stranger.id}/${action}`);
        expect(res.status, action).to.equal(404);
        expect(res.html).to.include('There is no such user in your company.');
      }
      expect(mailbox.for('stranger@other.example')).to.have.length(0);
      expect((await testEnv().db('users').where({ id: stranger.id }).first()).status).to.equal('invited');
      const bogus = await post(browser, list, '/account/users/not-a-uuid/disable');
      expect(bogus.status).to.equal(404);
    });

    it('refuses bad input when creating a user and keeps the form', async () => {
      const { browser } = await adminWithCustomer();
      const list = await browser.go(url('/account/users'));
      const bad = await post(browser, list, '/account/users', { name: 'X', email: 'not-an-email', role: 'user' });
      expect(bad.status).to.equal(400);
      expect(bad.html).to.include('This is not a valid email address.').and.include('value="not-an-email"');
      const role = await post(browser, list, '/account/users', { name: 'X', email: 'x@acme.example', role: 'root' });
      expect(role.status).to.equal(400);
      const dup = await post(browser, list, '/account/users', { name: 'Admin 2', email: 'ADMIN@acme.example', role: 'user' });
      expect(dup.status).to.equal(409);
      expect(await testEnv().db('users').count({ n: '*' }).first()).to.deep.equal({ n: 1 });
    });

    it('disabling a user ends their sessions and refresh tokens at once; enabling lets them back in', async () => {
      const { browser: adminBrowser, customer } = await adminWithCustomer();
      const { services } = testEnv().server.app;
      const { user: worker } = await createUser(services.db, services.hasher, { customerNumber: customer.customer_number, email: 'worker@acme.example', name: 'Worker', password: PASSWORD });
      const rp = await relyingParty(await makeClient());
      const workerBrowser = new Browser();
      const { tokens } = await signInAndGetTokens(rp, 'worker@acme.example', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, workerBrowser);
      expect(tokens.refresh_token).to.be.a('string');

      const list = await adminBrowser.go(url('/account/users'));
      const self = await post(adminBrowser, list, `/account/users/${(await testEnv().db('users').where({ email: 'admin@acme.example' }).first()).id}/disable`);
      expect(self.status).to.equal(400);
      const done = await post(adminBrowser, list, `/account/users/${worker.id}/disable`);
      expect(done.html).to.include('worker@acme.example is disabled and was signed out everywhere.');

      let refreshError: unknown;
      await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!).catch((e: unknown) => (refreshError = e));
      expect((refreshError as { error?: string }).error).to.equal('invalid_grant');
      const again = await workerBrowser.go((await rp.authorize()).url, {}, testEnv().url);
      expect(again.html).to.include('name="password"'); // the session is gone: sign in again
      const refused = await submitPassword(workerBrowser, again, 'worker@acme.example', PASSWORD);
      expect(refused.status).to.equal(401);
      expect(refused.html).to.include('The email address, customer number or password is not correct.');

      await post(adminBrowser, list, `/account/users/${worker.id}/enable`);
      const back = await signInAndGetTokens(rp, 'worker@acme.example', PASSWORD, {}, new Browser());
      expect(back.tokens.claims()!.sub).to.equal(worker.id);
      const audit = await testEnv().db('audit_events').where({ user_id: worker.id, type: 'user.disabled' }).first();
      expect(audit.details.sessions).to.be.at.least(1);
      expect(audit.details.tokens).to.be.at.least(1);
    });
  });

  describe('forgot password', () => {
    async function requestReset(email: string): Promise<Page> {
      const browser = new Browser();
      const rp = await relyingParty(await makeClient());
      const signIn = await openSignIn(browser, (await rp.authorize()).url);
      const forgotHref = /href="(\/password\/forgot\?interaction=[^"]+)"/.exec(signIn.html)![1]!;
      const forgot = await browser.go(url(forgotHref));
      expect(forgot.html).to.include('<h1>Forgot password?</h1>');
      return post(browser, forgot, '/password/forgot', { email, interaction: '' });
    }

    it('answers the same whether or not the account exists; the link resets once and ends other sessions', async () => {
      const { user } = await makeUser({ email: 'forgetful@example.com' });
      const rp = await relyingParty(await makeClient());
      const other = await signInAndGetTokens(rp, 'forgetful@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' });

      const unknown = await requestReset('nobody@example.com');
      const known = await requestReset('Forgetful@example.com');
      expect(unknown.status).to.equal(known.status);
      const body = (p: Page) => /<main class="card">([\s\S]*)<\/main>/.exec(p.html)![1]!.replace(/name="_csrf" value="[^"]+"/, '');
      expect(body(unknown)).to.equal(body(known));
      expect(known.html).to.include('If an account exists for this address');
      expect(mailbox.for('nobody@example.com')).to.have.length(0);

      const mail = await mailbox.latest('forgetful@example.com');
      expect(mail.subject).to.equal('Set a new password');
      const link = linkIn(mail.text, '/password/reset');
      const browser = new Browser();
      const form = await browser.go(link);
      expect(form.html).to.include('<label for="password">New password</label>');
      const weak = await browser.submit(form, formAction(form.html), { _csrf: csrfToken(form.html), password: 'letmein1' });
      expect(weak.status).to.equal(400);
      expect(weak.html).to.include('too common');
      mailbox.clear();
      const done = await browser.submit(form, formAction(form.html), { _csrf: csrfToken(form.html), password: NEW_PASSWORD });
      expect(done.html).to.include('Your password has been changed');
      expect((await mailbox.latest('forgetful@example.com')).subject).to.equal('Your password was changed');

      let refreshError: unknown;
      await oidc.refreshTokenGrant(rp.config, other.tokens.refresh_token!).catch((e: unknown) => (refreshError = e));
      expect((refreshError as { error?: string }).error).to.equal('invalid_grant');
      const reused = await new Browser().go(link);
      expect(reused.status).to.equal(410);
      expect(reused.html).to.include('This link is not valid or was already used.');
      const { tokens } = await signInAndGetTokens(rp, 'forgetful@example.com', NEW_PASSWORD);
      expect(tokens.claims()!.sub).to.equal(user.id);
      const types = (await testEnv().db('audit_events').where({ user_id: user.id }).orderBy('id')).map((e) => e.type);
      expect(types).to.include.members(['password.reset_requested', 'password.reset']);
    });

    it('an expired link is refused; requests are limited per address without changing the answer', async () => {
      const { user } = await makeUser({ email: 'limited@example.com' });
      for (let i = 0; i < 4; i += 1) expect((await requestReset('limited@example.com')).html).to.include('If an account exists');
      expect(mailbox.for('limited@example.com')).to.have.length(3);
      await testEnv().db('user_tokens').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() - 1000) });
      const link = linkIn((await mailbox.latest('limited@example.com')).text, '/password/reset');
      const expired = await new Browser().go(link);
      expect(expired.status).to.equal(410);
      expect(expired.html).to.include('This link has expired.');
      const invalidEmail = await requestReset('not an email');
      expect(invalidEmail.status).to.equal(400);
    });
  });

  describe('change password', () => {
    it('needs the current password, follows the policy, and ends the other sessions but not this one', async () => {
      const { user } = await makeUser({ email: 'changer@example.com' });
      const other = new Browser();
      await consoleSignIn(other, 'changer@example.com', PASSWORD);
      const browser = new Browser();
      await consoleSignIn(browser, 'changer@example.com', PASSWORD);
      const page = await browser.go(url('/account/password'));
      expect(page.html).to.include('autocomplete="current-password"').and.include('autocomplete="new-password"');

      const wrong = await post(browser, page, '/account/password', { current_password: 'not it at all', new_password: NEW_PASSWORD });
      expect(wrong.status).to.equal(400);
      expect(wrong.html).to.include('The current password is not correct.');
      const weak = await post(browser, page, '/account/password', { current_password: PASSWORD, new_password: 'qwerty123' });
      expect(weak.status).to.equal(400);
      expect(weak.html).to.include('too common');
      mailbox.clear();
      const done = await post(browser, page, '/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD });
      expect(done.html).to.include('Your password has been changed.');
      expect((await mailbox.latest('changer@example.com')).subject).to.equal('Your password was changed');

      expect((await browser.go(url('/account'))).html).to.include('Signed in as changer@example.com');
      const otherNow = await other.go(url('/account'));
      expect(otherNow.html).to.include('name="password"'); // signed out there
      const audit = await testEnv().db('audit_events').where({ user_id: user.id, type: 'password.changed' }).first();
      expect(audit.details.sessions).to.equal(1);
      expect((await testEnv().db('audit_events').where({ user_id: user.id, type: 'password.change_failed' })).length).to.equal(1);
    });
  });
});

describe('sign-in page links', () => {
  beforeEach(resetData);
  it('"Forgot password?" keeps the way back to the sign-in', async () => {
    const rp = await relyingParty(await makeClient());
    const browser = new Browser();
    const page = await openSignIn(browser, (await rp.authorize()).url);
    expect(page.html).to.include('Forgot password?');
    const href = /href="(\/password\/forgot\?interaction=([^"]+))"/.exec(page.html)!;
    const forgot = await browser.go(url(href[1]!));
    expect(forgot.html).to.include(`href="/interaction/${href[2]}"`);
  });
});
