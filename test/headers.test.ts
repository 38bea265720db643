// Security headers on every page (ours and oidc-provider's), HSTS only over https behind a trusted
// proxy, cookie attributes over https, no inline script anywhere, and CSRF tokens on every form.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunningServer } from '../src/app.js';
import { VIEWS_DIR } from '../src/http/render.js';
import { Browser, csrfToken, type Page } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { completeSignIn, openSignIn, relyingParty } from './support/rp.js';
import { relyingPartyWith } from './support/tokens.js';

function expectPageHeaders(headers: Headers, where: string): void {
  const csp = headers.get('content-security-policy') ?? '';
  expect(csp, where).to.include("frame-ancestors 'none'").and.include("script-src 'self'").and.include("object-src 'none'");
  expect(csp, where).not.to.include('unsafe-inline');
  expect(csp, where).not.to.include('unsafe-eval');
  expect(headers.get('x-frame-options'), where).to.equal('DENY');
  expect(headers.get('x-content-type-options'), where).to.equal('nosniff');
  expect(headers.get('referrer-policy'), where).to.equal('no-referrer');
}

/**
 * A browser on https behind the TLS proxy: requests go to the instance over http with
 * X-Forwarded-Proto: https, and cookies are kept as a browser on https would (Secure ones included).
 */
class HttpsBrowser extends Browser {
  readonly setCookies: string[] = [];

  constructor(private readonly base: string) {
    super({ 'x-forwarded-proto': 'https' });
  }

  private https(url: string): string {
    return url.replace(/^http:/, 'https:');
  }

  override async request(url: string, init: RequestInit = {}): Promise<Response> {
    const plain = url.replace(/^https:/, 'http:');
    const cookie = await this.jar.getCookieString(this.https(plain));
    const response = await fetch(plain, {
      ...init,
      redirect: 'manual',
      headers: { 'x-forwarded-proto': 'https', ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string> | undefined) },
    });
    for (const setCookie of response.headers.getSetCookie()) {
      this.setCookies.push(setCookie);
      await this.jar.setCookie(setCookie, this.https(plain));
    }
    return response;
  }

  override async go(url: string, init: RequestInit = {}): Promise<Page> {
    let response = await this.request(url, init);
    let current = url.replace(/^https:/, 'http:');
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
      const location = new URL(response.headers.get('location')!, current).href.replace(/^https:/, 'http:');
      if (!location.startsWith(this.base)) return { status: response.status, url: location, html: '', headers: response.headers };
      await response.arrayBuffer();
      current = location;
      response = await this.request(current);
    }
    return { status: response.status, url: current, html: await response.text(), headers: response.headers };
  }

  override async submit(page: Page, action: string, fields: Record<string, string>): Promise<Page> {
    return this.go(new URL(action, page.url).href, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
}

describe('security headers and cookies', () => {
  let proxied: RunningServer;
  before(async () => {
    proxied = await startInstance({ trustProxy: true });
  });
  after(() => proxied.close());
  beforeEach(resetData);

  it('every page of ours and of oidc-provider sends CSP without inline script, frame-ancestors none, no-referrer', async () => {
    const client = await makeClient();
    const rp = await relyingParty(client);
    const browser = new Browser();
    const { url } = testEnv();
    const pages: [string, Page][] = [
      ['sign-in page', await openSignIn(browser, (await rp.authorize()).url)],
      ['forgot password', await browser.go(`${url}/password/forgot`)],
      ['reset link (secret in the URL)', await browser.go(`${url}/password/reset/${'A'.repeat(43)}`)],
      ['invitation link (secret in the URL)', await browser.go(`${url}/invite/${'B'.repeat(43)}`)],
      ['oidc-provider error page', await browser.go(`${url}/auth?client_id=nope&response_type=code`)],
      ['oidc-provider logout page', await browser.go(`${url}/session/end`)],
      ['not found', await browser.go(`${url}/no/such/page`)],
      ['discovery (JSON)', await browser.go(`${url}/.well-known/openid-configuration`)],
    ];
    for (const [name, page] of pages) expectPageHeaders(page.headers, name);
    // Every response carries a request id.
    for (const [name, page] of pages) expect(page.headers.get('x-request-id'), name).to.match(/^[\w-]{8,}$/);
  });

  it('no page view has inline script, inline event handlers or inline styles (mail templates aside)', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory() && entry.name !== 'mail') walk(path.join(dir, entry.name));
        else if (entry.name.endsWith('.ejs')) files.push(path.join(dir, entry.name));
      }
    };
    walk(VIEWS_DIR);
    expect(files.length).to.be.greaterThan(15);
    for (const file of files) {
      const html = readFileSync(file, 'utf8');
      expect(html, file).not.to.match(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html, file).not.to.match(/\son[a-z]+\s*=/i);
      expect(html, file).not.to.match(/\sstyle\s*=|<style/i);
    }
  });

  it('HSTS only over https through a trusted proxy', async () => {
    const plain = await fetch(`${proxied.url}/password/forgot`);
    expect(plain.headers.get('strict-transport-security')).to.equal(null);
    const https = await fetch(`${proxied.url}/password/forgot`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(https.headers.get('strict-transport-security')).to.match(/^max-age=\d{8,}; includeSubDomains$/);
    // Without TRUST_PROXY the header is not believed.
    const untrusted = await fetch(`${testEnv().url}/password/forgot`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(untrusted.headers.get('strict-transport-security')).to.equal(null);
  });

  it('over https every cookie of a whole sign-in is Secure, HttpOnly and SameSite', async () => {
    await makeUser({ email: 'cookies@example.com' });
    const client = await makeClient();
    const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, proxied.url);
    const browser = new HttpsBrowser(proxied.url);
    const page = await browser.go((await rp.authorize()).url);
    expect(page.status).to.equal(200);
    const done = await completeSignIn(browser, page, 'cookies@example.com', PASSWORD, { trust: 'yes', origin: proxied.url });
    expect(done.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
    const names = new Set(browser.setCookies.map((c) => c.split('=')[0]));
    for (const name of ['_interaction', '_interaction_resume', '_session', 'idp_csrf', 'idp_trust']) expect([...names], name).to.include(name);
    for (const cookie of browser.setCookies) {
      expect(cookie, cookie).to.match(/;\s*secure/i);
      expect(cookie, cookie).to.match(/;\s*httponly/i);
      expect(cookie, cookie).to.match(/;\s*samesite=(lax|strict)/i);
    }
  });

  it('every POST route refuses a missing or a foreign CSRF token with 403, and every form carries one', async () => {
    const { url, server } = testEnv();
    const posts = server.app.routes.filter((r) => r.methods.includes('POST'));
    expect(posts.length).to.be.greaterThan(15);
    const browser = new Browser();
    const own = await browser.go(`${url}/password/forgot`);
    const foreign = csrfToken((await new Browser().go(`${url}/password/forgot`)).html);
    expect(foreign).not.to.equal(csrfToken(own.html));
    for (const route of posts) {
      const target = `${url}${route.path.replace(/:step/, 'password').replace(/:(\w+)/g, 'x1234567890')}`;
      for (const token of [undefined, foreign]) {
        const res = await browser.request(target, { method: 'POST', body: new URLSearchParams({ ...(token ? { _csrf: token } : {}), email: 'a@example.com' }) });
        expect(res.status, `${route.path} with ${token ? 'a foreign' : 'no'} token`).to.equal(403);
        expect(await res.text()).to.include('This form has expired');
      }
    }
    // With the page's own token the same kind of request goes through.
    const ok = await browser.submit(own, '/password/forgot', { _csrf: csrfToken(own.html), email: 'a@example.com' });
    expect(ok.status).to.equal(200);
    // Every form in the views carries the token.
    const forms = readdirSync(VIEWS_DIR, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ejs'))
      .flatMap((f) => readFileSync(path.join(VIEWS_DIR, f), 'utf8').split(/<form/).slice(1).map((form) => [f, form.split('</form>')[0]!] as const));
    expect(forms.length).to.be.greaterThan(15);
    for (const [file, form] of forms) if (/method="post"/i.test(form)) expect(form, file).to.include('name="_csrf"');
  });
});
