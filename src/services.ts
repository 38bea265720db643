// The long-lived objects a request needs, built once at start-up and handed to routes and commands.
import { PasswordHasher } from './accounts/passwords.js';
import type { Config } from './config.js';
import type { Db } from './db/index.js';
import type { Logger } from './log.js';
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
  };
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
    },
  };
}
