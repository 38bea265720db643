// A minimal browser for HTTP tests: fetch with a real cookie jar (tough-cookie, so cookie paths and
// attributes behave as in a browser) and redirects followed by hand.
import { CookieJar } from 'tough-cookie';

export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

export class Browser {
  readonly jar = new CookieJar();

  constructor(private readonly headers: Record<string, string> = {}) {}

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const cookie = await this.jar.getCookieString(url);
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...this.headers, ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string> | undefined) },
    });
    for (const setCookie of response.headers.getSetCookie()) await this.jar.setCookie(setCookie, url);
    return response;
  }

  /**
   * Requests `url` and follows redirects while they stay under `origin`. Returns the final page, or the
   * first redirect that leaves `origin` (the relying party's redirect_uri) as `url` with status 3xx.
   */
  async go(url: string, init: RequestInit = {}, origin = new URL(url).origin): Promise<Page> {
    let response = await this.request(url, init);
    let current = url;
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
      const location = new URL(response.headers.get('location')!, current).href;
      if (!location.startsWith(origin)) return { status: response.status, url: location, html: '', headers: response.headers };
      await response.arrayBuffer();
      current = location;
      response = await this.request(current);
    }
    return { status: response.status, url: current, html: await response.text(), headers: response.headers };
  }

  /** Submits a form as application/x-www-form-urlencoded and follows redirects under the page's origin. */
  async submit(page: Page, action: string, fields: Record<string, string>, origin = new URL(page.url).origin): Promise<Page> {
    const target = new URL(action, page.url).href;
    return this.go(target, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } }, origin);
  }
}

export function formAction(html: string): string {
  const match = /<form method="post" action="([^"]+)"/.exec(html);
  if (!match) throw new Error('no form on the page');
  return match[1]!.replace(/&amp;/g, '&');
}

export function csrfToken(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

export function inputValue(html: string, name: string): string | undefined {
  const tag = new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(html)?.[0];
  return tag ? /value="([^"]*)"/.exec(tag)?.[1] : undefined;
}
