// Security headers for the pages this project renders (oidc-provider sets its own on its endpoints).
import type { Context, Next } from 'koa';

function csp(imageOrigins: string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    ["img-src 'self' data:", ...imageOrigins].join(' '),
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    // No form-action: browsers apply it to the redirect back to the app after a form post.
  ].join('; ');
}
const CSP = csp();

/** Lets this page show an image from one more origin (a client's registered logo_uri). */
export function allowImageFrom(ctx: Context, uri: string | undefined): void {
  if (!uri) return;
  const origin = new URL(uri).origin;
  if (origin !== 'null') ctx.set('Content-Security-Policy', csp([origin]));
}

export function securityHeaders() {
  return async function securityHeadersMiddleware(ctx: Context, next: Next): Promise<void> {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}
