// Cookie signatures (src/http/cookie-keys.ts) must stay what keygrip makes, so cookies signed before an
// upgrade keep working, and COOKIE_KEYS must rotate: a new first key signs, the old ones still verify.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import Keygrip from 'keygrip';
import { CookieKeys } from '../src/http/cookie-keys.js';
import { Browser } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { isCodePage, openSignIn, relyingPartyWith, submitPassword } from './support/rp.js';

describe('cookie signatures', () => {
  it('are the ones keygrip makes, with every key verifying and the first signing', () => {
    const secrets = [randomBytes(32).toString('base64url'), 'an older key, with ünïcode', 'x'];
    const ours = new CookieKeys(secrets);
    const theirs = new Keygrip(secrets);
    for (const data of ['_session=abc', '', 'ä'.repeat(300), `_interaction=${randomBytes(40).toString('base64url')}`]) {
      expect(ours.sign(data)).to.equal(theirs.sign(data));
      secrets.forEach((_s, i) => {
        const signed = new Keygrip(secrets.slice(i)).sign(data);
        expect(ours.index(data, signed)).to.equal(i);
        expect(ours.verify(data, signed)).to.equal(true);
      });
    }
  });

  it('refuse tampered data, foreign keys, and signatures of another length', () => {
    const keys = new CookieKeys(['k1', 'k2']);
    const signature = keys.sign('_session=abc');
    expect(keys.index('_session=abd', signature)).to.equal(-1);
    expect(keys.index('_session=abc', new Keygrip(['k3']).sign('_session=abc'))).to.equal(-1);
    expect(keys.index('_session=abc', signature.slice(1))).to.equal(-1);
    expect(keys.index('_session=abc', `${signature}A`)).to.equal(-1);
    expect(keys.index('_session=abc', '')).to.equal(-1);
    expect(() => new CookieKeys([])).to.throw();
  });

  describe('rotating COOKIE_KEYS', () => {
    beforeEach(resetData);

    it('a sign-in started under the old key continues on an instance whose keys are "new,old", not on one with only the new key', async () => {
      await makeUser({ email: 'rotate@example.com' });
      const client = await makeClient();
      const a = testEnv().server;
      const old = testEnv().config.cookieKeys;
      const fresh = randomBytes(32).toString('base64url');
      const rotated = await startInstance({ cookieKeys: [fresh, ...old] }, { sameIssuer: true });
      const newOnly = await startInstance({ cookieKeys: [fresh] }, { sameIssuer: true });
      try {
        const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, a.url);
        const on = (page: { url: string }, base: string) => ({ ...page, url: page.url.replace(a.url, base) });

        // Cookies signed with the old key, presented where it is unknown.
        const stranger = new Browser();
        const started = await openSignIn(stranger, (await rp.authorize()).url, a.url);
        const lost = await submitPassword(stranger, on(started, newOnly.url) as typeof started, 'rotate@example.com', PASSWORD, newOnly.url);
        expect(lost.status, 'cookies under an unknown key are not accepted').to.be.within(400, 499);
        expect(isCodePage(lost)).to.equal(false);

        const browser = new Browser();
        const signIn = await openSignIn(browser, (await rp.authorize()).url, a.url);
        const codePage = await submitPassword(browser, on(signIn, rotated.url) as typeof signIn, 'rotate@example.com', PASSWORD, rotated.url);
        expect(isCodePage(codePage), 'password step on the rotated instance').to.equal(true);
      } finally {
        await rotated.close();
        await newOnly.close();
      }
    });
  });
});
