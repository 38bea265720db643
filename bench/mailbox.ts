// The benchmark's SMTP server (smtp-server, in this process, on 127.0.0.1): the provider sends its email
// codes here over real SMTP, and the sign-in driver waits for the code of its user. The code is read from
// the raw message (six digits alone on an indented line of the plain-text part); mailparser only as a fallback.
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const CODE = /^ {4}(\d{6})\r?$/m;

export class BenchMailbox {
  private server: SMTPServer | undefined;
  private codes = new Map<string, string[]>();
  private waiters = new Map<string, (code: string) => void>();
  received = 0;
  port = 0;

  async start(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      size: 1024 * 1024,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          const found = CODE.exec(raw.toString('utf8'))?.[1];
          const deliver = (code: string | undefined) => {
            this.received += 1;
            if (code) for (const address of to) this.deliver(address, code);
            callback();
          };
          if (found) deliver(found);
          else
            simpleParser(raw)
              .then((parsed) => deliver(CODE.exec(parsed.text ?? '')?.[1]))
              .catch(() => deliver(undefined));
        });
      },
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  private deliver(address: string, code: string): void {
    const waiter = this.waiters.get(address);
    if (waiter) {
      this.waiters.delete(address);
      waiter(code);
      return;
    }
    this.codes.set(address, [...(this.codes.get(address) ?? []), code]);
  }

  /** The next code mailed to `address` (each code is handed out once). */
  code(address: string, timeoutMs = 15_000): Promise<string> {
    const key = address.toLowerCase();
    const queued = this.codes.get(key);
    if (queued?.length) return Promise.resolve(queued.shift()!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`no email code for ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(key, (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }
}
