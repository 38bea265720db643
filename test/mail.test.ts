import { expect } from 'chai';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { startServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { DevOutbox, MailDeliveryError, SmtpMailer } from '../src/mail/mailer.js';
import { signInCodeMessage } from '../src/mail/messages.js';
import { testEnv } from './support/env.js';

const log = createLogger('silent');
const message = { to: 'someone@example.com', subject: 'Hello', text: 'plain text part', html: '<p>html part</p>' };

describe('mail delivery', () => {
  it('sends over SMTP with authentication, with a plain-text and an HTML part', async () => {
    const received: { user?: string; text?: string; html?: string | false }[] = [];
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === 'mailer' && auth.password === 's3cret') return callback(null, { user: auth.username });
        return callback(new Error('invalid credentials'));
      },
      onData(stream, session, callback) {
        simpleParser(stream)
          .then((parsed) => {
            received.push({ user: session.user as string, text: parsed.text, html: parsed.html });
            callback();
          })
          .catch(callback);
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.server.address() as AddressInfo).port;
    try {
      await new SmtpMailer(`smtp://mailer:s3cret@127.0.0.1:${port}`, 'IdP <idp@example.com>', log).send(message);
      expect(received).to.have.length(1);
      expect(received[0]).to.deep.include({ user: 'mailer', text: 'plain text part' });
      expect(received[0]!.html).to.include('html part');

      let error: unknown;
      await new SmtpMailer(`smtp://mailer:wrong@127.0.0.1:${port}`, 'IdP <idp@example.com>', log).send(message).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(MailDeliveryError);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports an unreachable SMTP server as a delivery error', async () => {
    let error: unknown;
    await new SmtpMailer('smtp://127.0.0.1:9', 'IdP <idp@example.com>', log).send(message).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(MailDeliveryError);
  });

  it('the development outbox keeps each message as a private file and lists the newest first', async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'idp-outbox-')), 'outbox');
    const outbox = new DevOutbox(dir, 'IdP <idp@example.com>', log);
    await outbox.send(message);
    await outbox.send({ ...message, subject: 'Second' });
    const files = readdirSync(dir);
    expect(files).to.have.length(2);
    expect(statSync(path.join(dir, files[0]!)).mode & 0o777).to.equal(0o600);
    const listed = await outbox.list();
    expect(listed.map((m) => m.subject)).to.deep.equal(['Second', 'Hello']);
    expect(listed[0]).to.include({ to: 'someone@example.com', from: 'IdP <idp@example.com>', text: 'plain text part' });
  });

  it('in development without SMTP, /dev/outbox lists the mail; with SMTP the page does not exist', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'idp-dev-'));
    const dev = await startServer({ ...testEnv().config, smtpUrl: undefined, dataDir, port: 0 }, { db: testEnv().db, log, issuerForPort: (p) => `http://127.0.0.1:${p}` });
    try {
      const mail = await signInCodeMessage('en', { to: 'dev@example.com', code: '123456', when: new Date(), ip: '127.0.0.1', device: { browser: 'Firefox 140', os: 'Linux' }, secureUrl: 'http://127.0.0.1/account/secure' });
      await dev.app.services.mailer.send(mail);
      const page = await fetch(`${dev.url}/dev/outbox`);
      expect(page.status).to.equal(200);
      const html = await page.text();
      expect(html).to.include('Your sign-in code').and.include('dev@example.com').and.include('123456');
    } finally {
      await dev.close();
    }
    expect((await fetch(`${testEnv().url}/dev/outbox`)).status).to.equal(404);
  });
});
