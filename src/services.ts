// The long-lived objects a request needs, built once at start-up and handed to routes and commands.
import { PasswordHasher } from './accounts/passwords.js';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import type { Db } from './db/index.js';
import { buildBrand, readBrandLogo, type Brand } from './http/brand.js';
import type { Logger } from './log.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import { Secrets } from './security/crypto.js';
import { Limiter } from './security/rate-limit.js';

export interface Services {
  config: Config;
  db: Db;
  log: Logger;
  secrets: Secrets;
  hasher: PasswordHasher;
  limits: {
    /** Wrong passwords per typed identifier: 10 in 15 minutes, then 15 minutes' pause. */
    passwordPerIdentifier: Limiter;
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
  };
  mailer: Mailer;
  /** The customer's name, colour and logo for the pages (BRAND_*). */
  brand: Brand;
  /** The provider in use (set once the app is built; a stand-in that follows key rotation). */
  provider?: Provider;
}

export function createServices(config: Config, db: Db, log: Logger): Services {
  return {
    config,
    db,
    log,
    secrets: new Secrets(config.dataEncryptionKey),
    hasher: new PasswordHasher(config.argon2),
    limits: {
      passwordPerIdentifier: new Limiter(db, 'pwd-id', { points: 10, duration: 15 * 60, blockDuration: 15 * 60 }),
      passwordPerIp: new Limiter(db, 'pwd-ip', { points: 100, duration: 60 * 60, blockDuration: 15 * 60 }),
      codeSendPerUser: new Limiter(db, 'code-send', { points: 5, duration: 60 * 60 }),
      codeResendPerUser: new Limiter(db, 'code-resend', { points: 1, duration: 60 }),
      codeGuessPerUser: new Limiter(db, 'code-guess', { points: 20, duration: 60 * 60 }),
      totpGuessPerUser: new Limiter(db, 'totp-guess', { points: 10, duration: 15 * 60, blockDuration: 15 * 60 }),
      invitationEmailPerToken: new Limiter(db, 'invite-email', { points: 5, duration: 60 * 60 }),
      resetPerEmail: new Limiter(db, 'reset-email', { points: 3, duration: 60 * 60 }),
      resetPerIp: new Limiter(db, 'reset-ip', { points: 20, duration: 60 * 60 }),
      passwordChangePerUser: new Limiter(db, 'pwd-change', { points: 5, duration: 15 * 60, blockDuration: 15 * 60 }),
      deviceVerifyPerUsername: new Limiter(db, 'device-verify', { points: 20, duration: 15 * 60, blockDuration: 15 * 60 }),
      googleCallbackPerIp: new Limiter(db, 'google-ip', { points: 20, duration: 15 * 60, blockDuration: 15 * 60 }),
    },
    mailer: createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, dataDir: config.dataDir, log }),
    brand: buildBrand({ name: config.brandName, color: config.brandColor, logo: config.brandLogoPath ? readBrandLogo(config.brandLogoPath) : undefined }),
  };
}
