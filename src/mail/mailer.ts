// Outgoing mail: SMTP through nodemailer when SMTP_URL is set; otherwise a development outbox that
// logs each message and keeps it as a JSON file under DATA_DIR/outbox.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from '../log.js';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Resolves once the message was accepted for delivery; rejects with MailDeliveryError otherwise. */
  send(message: MailMessage): Promise<void>;
}

export class MailDeliveryError extends Error {
  constructor(cause: unknown) {
    super('mail delivery failed', { cause });
    this.name = 'MailDeliveryError';
  }
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
    private readonly log: Logger,
  ) {
    // Short timeouts: a user waits for this page. A failure is shown to the user with a retry button.
    this.transport = nodemailer.createTransport(smtpUrl, { connectionTimeout: 5_000, greetingTimeout: 5_000, socketTimeout: 10_000 } as never);
  }

  async send(message: MailMessage): Promise<void> {
    try {
      await this.transport.sendMail({ from: this.from, ...message });
      this.log.info({ to: message.to, subject: message.subject }, 'mail sent');
    } catch (error) {
      this.log.error({ err: error, to: message.to, subject: message.subject }, 'mail delivery failed');
      throw new MailDeliveryError(error);
    }
  }
}

export interface OutboxEntry extends MailMessage {
  id: string;
  from: string;
  date: string;
}

export class DevOutbox implements Mailer {
  private counter = 0;

  constructor(
    readonly dir: string,
    private readonly from: string,
    private readonly log: Logger,
  ) {}

  async send(message: MailMessage): Promise<void> {
    const date = new Date().toISOString();
    this.counter += 1;
    const id = `${date.replace(/[:.]/g, '-')}-${process.pid}-${this.counter}`;
    const entry: OutboxEntry = { id, from: this.from, date, ...message };
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFile(path.join(this.dir, `${id}.json`), JSON.stringify(entry, null, 2), { mode: 0o600 });
    } catch (error) {
      throw new MailDeliveryError(error);
    }
    this.log.info({ to: message.to, subject: message.subject, file: `${id}.json` }, 'mail kept in the development outbox');
  }

  async list(limit = 50): Promise<OutboxEntry[]> {
    const files = (await readdir(this.dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort().reverse().slice(0, limit);
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(this.dir, f), 'utf8')) as OutboxEntry));
  }
}

export function createMailer(options: { smtpUrl: string | undefined; from: string; dataDir: string; log: Logger }): Mailer {
  return options.smtpUrl
    ? new SmtpMailer(options.smtpUrl, options.from, options.log)
    : new DevOutbox(path.join(options.dataDir, 'outbox'), options.from, options.log);
}
