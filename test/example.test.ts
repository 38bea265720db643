import { expect } from 'chai';
import { startExample } from '../examples/relying-party/app.js';
import { Browser, csrfToken, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { completeSignIn } from './support/rp.js';
import { answerConsent, isConsentPage } from './support/tokens.js';

/** Both the provider and the example app listen on 127.0.0.1: follow redirects between them. */
const BOTH = 'http://127.0.0.1';

describe('example relying party (examples/relying-party)', () => {
  let example: { url: string; close(): Promise<void> } | undefined;
  const logoutTokens: Record<string, unknown>[] = [];

  beforeEach(resetData);
  afterEach(async () => {
    await example?.close();
    example = undefined;
  });

  it('signs in (with consent), shows the claims, calls userinfo, refreshes and logs out', async () => {
    const { user } = await makeUser({ email: 'example@example.com' });
    example = await startExample({
      issuer: testEnv().url,
      port: 0,
      credentials: async (baseUrl) => {
        const client = await makeClient({
          name: 'Example app',
          firstParty: false,
          redirectUris: [`${baseUrl}/cb`],
          postLogoutRedirectUris: [`${baseUrl}/`],
          backchannelLogoutUri: `${baseUrl}/backchannel-logout`,
        });
        return { clientId: client.client_id, clientSecret: client.client_secret! };
      },
      onLogoutToken: (claims) => logoutTokens.push(claims),
    });
    const browser = new Browser();
    const home = await browser.go(`${example.url}/`);
    expect(home.html).to.include('You are not signed in.');

    let page: Page = await browser.go(`${example.url}/login`, {}, BOTH);
    expect(page.url.startsWith(testEnv().url)).to.equal(true);
    page = await completeSignIn(browser, page, 'example@example.com', PASSWORD);
    expect(isConsentPage(page)).to.equal(true);
    expect(page.html).to.include('Example app would like to:');
    page = await browser.submit(page, /<form method="post" action="([^"]+)"/.exec(page.html)![1]!, { _csrf: csrfToken(page.html), decision: 'allow' }, BOTH);
    expect(page.url).to.equal(`${example.url}/`);
    expect(page.html).to.include('Signed in as <strong id="subject">example@example.com</strong>');
    expect(page.html).to.include(`&quot;sub&quot;: &quot;${user.id}&quot;`);

    page = await browser.go(`${example.url}/userinfo`);
    expect(page.html).to.include('<h2>Userinfo</h2>');
    expect(page.html).to.include('&quot;customer_number&quot;');

    const formToken = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    page = await browser.submit(page, '/refresh', { csrf: formToken });
    expect(page.html).to.include('Tokens refreshed.');
    expect(await browser.submit(page, '/refresh', { csrf: 'forged' }).then((p) => p.status)).to.equal(403);

    // Log out: the provider asks for confirmation, notifies the app over the back channel, and sends the browser back.
    const confirm = await browser.submit(page, '/logout', { csrf: formToken }, BOTH);
    expect(confirm.html).to.include('Do you want to sign out of');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
    const action = /<form[^>]*action="([^"]+)"/.exec(confirm.html)![1]!;
    const back = await browser.submit(confirm, action, { xsrf, logout: 'yes' }, BOTH);
    expect(back.url).to.equal(`${example.url}/`);
    expect(back.html).to.include('You are not signed in.');
    expect(logoutTokens).to.have.length(1);
    expect(logoutTokens[0]).to.include({ sub: user.id });

    // The app refuses forged logout tokens.
    const forged = await fetch(`${example.url}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: 'e30.e30.' }) });
    expect(forged.status).to.equal(400);
    expect(logoutTokens).to.have.length(1);
  });

  it('shows the error when the user denies consent', async () => {
    await makeUser({ email: 'example-deny@example.com' });
    example = await startExample({
      issuer: testEnv().url,
      port: 0,
      credentials: async (baseUrl) => {
        const client = await makeClient({ firstParty: false, redirectUris: [`${baseUrl}/cb`] });
        return { clientId: client.client_id, clientSecret: client.client_secret! };
      },
    });
    const browser = new Browser();
    let page = await browser.go(`${example.url}/login`, {}, BOTH);
    page = await completeSignIn(browser, page, 'example-deny@example.com', PASSWORD);
    page = await answerConsent(browser, page, 'deny');
    // answerConsent stops at the app's origin; follow the rest.
    page = await browser.go(page.url, {}, BOTH);
    expect(page.html).to.include('The sign-in was not completed: access_denied');
  });
});
