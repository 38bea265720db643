// A lean HTTP client for the load generator: node:http with keep-alive and a small cookie jar that honours
// Path and expiry (enough for oidc-provider's `_interaction` / `_interaction_resume` / `_session` cookies
// and our own `idp_csrf` / `idp_trust`). It is deliberately cheaper than fetch + tough-cookie, because the
// load generator shares the machine's cores with the server under test.
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: init.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

interface Cookie {
  name: string;
  value: string;
  path: string;
  expires: number; // ms epoch; Infinity = session cookie
}

export class CookieJar {
  private cookies = new Map<string, Cookie>();

  set(setCookie: string): void {
    const [pair, ...attrs] = setCookie.split(';');
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    let path = '/';
    let expires = Infinity;
    for (const attr of attrs) {
      const [k, v = ''] = attr.split('=');
      const key = k!.trim().toLowerCase();
      if (key === 'path') path = v.trim() || '/';
      else if (key === 'expires') expires = Math.min(expires, Date.parse(v.trim()));
      else if (key === 'max-age') expires = Date.now() + Number(v.trim()) * 1000;
    }
    const id = `${name}\0${path}`;
    if (expires <= Date.now() || value === '') this.cookies.delete(id);
    else this.cookies.set(id, { name, value, path, expires });
  }

  header(path: string): string {
    const now = Date.now();
    const out: string[] = [];
    for (const c of this.cookies.values()) {
      if (c.expires <= now) continue;
      if (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/') out.push(`${c.name}=${c.value}`);
    }
    return out.join('; ');
  }

  /** Keeps only the named cookies (e.g. the trust cookie after the user signed out and closed the browser). */
  keepOnly(names: string[]): void {
    for (const [id, c] of this.cookies) if (!names.includes(c.name)) this.cookies.delete(id);
  }

  export(names: string[]): string[] {
    return [...this.cookies.values()].filter((c) => names.includes(c.name)).map((c) => `${c.name}=${c.value}; Path=${c.path}`);
  }
}

export interface Page {
  status: number;
  url: URL;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** A browser: a cookie jar, redirects followed by hand while they stay on the provider's origin. */
export class Browser {
  readonly jar = new CookieJar();

  async request(url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
    const cookie = this.jar.header(url.pathname);
    const reply = await request(url, { ...init, headers: { 'user-agent': UA, 'accept-language': 'en', ...(cookie ? { cookie } : {}), ...init.headers } });
    const setCookie = reply.headers['set-cookie'];
    if (setCookie) for (const c of setCookie) this.jar.set(c);
    return reply;
  }

  /** Follows redirects under `origin`; returns the final page, or the first redirect leaving `origin` (status 3xx, url = Location). */
  async go(url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Page> {
    const origin = url.origin;
    let reply = await this.request(url, init);
    let current = url;
    for (let hops = 0; hops < 20 && reply.status >= 300 && reply.status < 400; hops += 1) {
      const location = new URL(String(reply.headers.location), current);
      if (location.origin !== origin) return { status: reply.status, url: location, body: '', headers: reply.headers };
      current = location;
      reply = await this.request(current);
    }
    return { status: reply.status, url: current, body: reply.body, headers: reply.headers };
  }

  submit(page: Page, fields: Record<string, string>): Promise<Page> {
    const action = formAction(page.body);
    return this.go(new URL(action, page.url), {
      method: 'POST',
      body: new URLSearchParams({ _csrf: csrfToken(page.body), ...fields }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  }
}

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 idp-bench';

export function formAction(html: string): string {
  const match = /<form method="post" action="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no form on the page: ${html.slice(0, 200)}`);
  return match[1]!.replace(/&amp;/g, '&');
}

export function csrfToken(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** POST an x-www-form-urlencoded body with client_secret_basic; returns the parsed JSON. */
export async function postForm(url: URL, fields: Record<string, string>, auth: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const reply = await request(url, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth, accept: 'application/json' },
  });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(reply.body) as Record<string, unknown>;
  } catch {
    json = { raw: reply.body.slice(0, 200) };
  }
  return { status: reply.status, json };
}
