// The long-lived objects a request needs, built once at start-up and handed to routes and commands.
import { CookieKeys } from './http/cookie-keys.js';
import { PasswordHasher } from './accounts/passwords.js';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import type { Db } from './db/index.js';
import { buildBrand, readBrandLogo, type Brand } from './http/brand.js';
import type { Logger } from './log.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import { Secrets } from './security/crypto.js';
import { Metrics } from './metrics.js';
import { Limiter, ProgressiveDelay, type DelayRule, type LimitRule } from './security/rate-limit.js';

export interface Services {
  config: Config;
  db: Db;
  log: Logger;
  secrets: Secrets;
  /** Signs and checks cookies (Koa's and oidc-provider's) with COOKIE_KEYS. */
  cookieKeys: CookieKeys;
  hasher: PasswordHasher;
  metrics: Metrics;
  limits: {
    /** Wrong passwords per account and client IP: 10 in 15 minutes, then 15 minutes' pause for that IP only. */
    passwordPerAccountIp: Limiter;
    /**
     * Password attempts per account from all IPs: 10 an hour pass freely; beyond that one attempt is
     * admitted per delay, doubling from 1 s to at most 60 s. Browsers the user trusts are exempt.
     */
    passwordPerAccount: ProgressiveDelay;
    /** Wrong passwords per client IP: 100 an hour (a shared office NAT stays usable). */
    passwordPerIp: Limiter;
    /** Email codes sent per user: 5 an hour (bounds mail an attacker with the password can trigger). */
    codeSendPerUser: Limiter;
    /** "Send a new code": once a minute per user. */
    codeResendPerUser: Limiter;
    /** Wrong email codes per user across sign-ins: 20 an hour (each code also locks after 5). */
    codeGuessPerUser: Limiter;
    /** Wrong authenticator or recovery codes per user: 10 in 15 minutes, then 15 minutes' pause. */
    totpGuessPerUser: Limiter;
    /** Wrong addresses typed for one invitation: 5 an hour. */
    invitationEmailPerToken: Limiter;
    /** "Forgot password?" requests: 3 an hour per address, 20 an hour per IP. */
    resetPerEmail: Limiter;
    resetPerIp: Limiter;
    /** Wrong current passwords on "Change password" per user: 5 in 15 minutes. */
    passwordChangePerUser: Limiter;
    /** Failed device-credential checks per SIP username: 20 in 15 minutes. */
    deviceVerifyPerUsername: Limiter;
    /** Refused "Sign in with Google" callbacks (wrong state, invalid ID token) per client IP: 20 in 15 minutes, then 15 minutes' pause. */
    googleCallbackPerIp: Limiter;
    /** Wrong email codes, authenticator codes and recovery codes per client IP: 50 an hour. */
    secondFactorPerIp: Limiter;
    /** Unknown invitation or reset links and wrong invitation addresses per client IP: 20 an hour. */
    linkPerIp: Limiter;
  };
  mailer: Mailer;
  /** The customer's name, colour and logo for the pages (BRAND_*). */
  brand: Brand;
  /** The provider in use (set once the app is built; a stand-in that follows key rotation). */
  provider?: Provider;
}

/** The password limits (README "Security"); the attack test computes its figures from these. */
export const PASSWORD_LIMITS = {
  perIp: { points: 100, duration: 60 * 60 },
  perAccountIp: { points: 10, duration: 15 * 60, blockDuration: 15 * 60 },
  perAccount: { free: 10, window: 60 * 60, baseDelay: 1, maxDelay: 60 },
} as const satisfies { perIp: LimitRule; perAccountIp: LimitRule; perAccount: DelayRule };

export function createServices(config: Config, db: Db, log: Logger, metrics = new Metrics()): Services {
  const onThrottle = (name: string) => metrics.throttled.inc({ limit: name });
  const limiter = (name: string, rule: LimitRule) => new Limiter(db, name, rule, onThrottle);
  return {
    config,
    db,
    log,
    secrets: new Secrets(config.dataEncryptionKey),
    cookieKeys: new CookieKeys(config.cookieKeys),
    hasher: new PasswordHasher(config.argon2, metrics),
    metrics,
    limits: {
      passwordPerAccountIp: limiter('pwd-acct-ip', PASSWORD_LIMITS.perAccountIp),
      passwordPerAccount: new ProgressiveDelay(db, 'pwd-acct', PASSWORD_LIMITS.perAccount, onThrottle),
      passwordPerIp: limiter('pwd-ip', PASSWORD_LIMITS.perIp),
      codeSendPerUser: limiter('code-send', { points: 5, duration: 60 * 60 }),
      codeResendPerUser: limiter('code-resend', { points: 1, duration: 60 }),
      codeGuessPerUser: limiter('code-guess', { points: 20, duration: 60 * 60 }),
      totpGuessPerUser: limiter('totp-guess', { points: 10, duration: 15 * 60, blockDuration: 15 * 60 }),
      invitationEmailPerToken: limiter('invite-email', { points: 5, duration: 60 * 60 }),
      resetPerEmail: limiter('reset-email', { points: 3, duration: 60 * 60 }),
      resetPerIp: limiter('reset-ip', { points: 20, duration: 60 * 60 }),
      passwordChangePerUser: limiter('pwd-change', { points: 5, duration: 15 * 60, blockDuration: 15 * 60 }),
      secondFactorPerIp: limiter('2fa-ip', { points: 50, duration: 60 * 60 }),
      linkPerIp: limiter('link-ip', { points: 20, duration: 60 * 60 }),
      deviceVerifyPerUsername: limiter('device-verify', { points: 20, duration: 15 * 60, blockDuration: 15 * 60 }),
      googleCallbackPerIp: limiter('google-ip', { points: 20, duration: 15 * 60, blockDuration: 15 * 60 }),
    },
    mailer: createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, dataDir: config.dataDir, log }),
    brand: buildBrand({ name: config.brandName, color: config.brandColor, logo: config.brandLogoPath ? readBrandLogo(config.brandLogoPath) : undefined }),
  };
}
