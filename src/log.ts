// Structured JSON logs (pino). Never log secrets: passwords, codes, tokens, cookies.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: undefined,
    redact: { paths: ['password', '*.password', 'code', '*.code', 'token', '*.token', 'headers.cookie', 'headers.authorization'], censor: '[redacted]' },
  });
}
