// The messages the provider sends, each with a plain-text and an HTML part in the page's language.
import path from 'node:path';
import ejs from 'ejs';
import { translator, type Locale, type MessageKey } from '../i18n/index.js';
import { VIEWS_DIR } from '../http/render.js';
import type { DeviceDescription } from '../security/user-agent.js';
import type { MailMessage } from './mailer.js';

function formatTime(date: Date, locale: Locale): string {
  return `${new Intl.DateTimeFormat(locale === 'de' ? 'de-DE' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(date)} UTC`;
}

async function html(view: string, locale: Locale, data: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(path.join(VIEWS_DIR, 'mail', `${view}.ejs`), { t: translator(locale), locale, ...data }, { cache: true });
}

export interface SignInCodeMail {
  to: string;
  code: string;
  when: Date;
  ip: string;
  device: DeviceDescription;
  /** "Secure my account" in the console: where the "not you?" advice leads. */
  secureUrl: string;
}

/** The email code doubles as a security alert: when, where from, and what to do if it was not you. */
export async function signInCodeMessage(locale: Locale, m: SignInCodeMail): Promise<MailMessage> {
  const t = translator(locale);
  const when = formatTime(m.when, locale);
  const text = [
    t('mail.code.heading'),
    '',
    t('mail.code.intro'),
    '',
    `    ${m.code}`,
    '',
    t('mail.code.validity'),
    '',
    `${t('mail.code.attempt')}:`,
    `- ${t('mail.code.time')}: ${when}`,
    `- ${t('mail.code.ip')}: ${m.ip}`,
    `- ${t('mail.code.browser')}: ${t('mail.code.browser_value', { browser: m.device.browser, os: m.device.os })}`,
    '',
    t('mail.code.not_you'),
    `1. ${t('mail.code.step1')}`,
    `2. ${t('mail.code.step2')}`,
    `3. ${t('mail.code.step3')}`,
    `4. ${t('mail.code.step4')}`,
    '',
    `${t('mail.code.secure_link')}: ${m.secureUrl}`,
    '',
    '-- ',
    t('mail.footer'),
  ].join('\n');
  return { to: m.to, subject: t('mail.code.subject'), text, html: await html('sign-in-code', locale, { code: m.code, when, ip: m.ip, device: m.device, secureUrl: m.secureUrl }) };
}

export interface SecurityNotice {
  to: string;
  subject: MessageKey;
  text: MessageKey;
  params?: Record<string, string>;
  when?: Date;
}

/** A short notice about a change to the account (2FA on/off, …), with what to do if it was not expected. */
export async function securityNoticeMessage(locale: Locale, n: SecurityNotice): Promise<MailMessage> {
  const t = translator(locale);
  const subject = t(n.subject);
  const paragraphs = [t(n.text, n.params), t('mail.notice.when', { when: formatTime(n.when ?? new Date(), locale) }), t('mail.notice.not_you')];
  const text = [subject, '', ...paragraphs.flatMap((p) => [p, '']), '-- ', t('mail.footer')].join('\n');
  return { to: n.to, subject, text, html: await html('notice', locale, { subject, paragraphs }) };
}

export interface ActionMail {
  to: string;
  subject: MessageKey;
  text: MessageKey;
  params?: Record<string, string>;
  button: MessageKey;
  /** Absolute URL under ISSUER. */
  url: string;
}

/** A message whose point is one link (invitation, password reset): a button in HTML, the URL in text. */
export async function actionMessage(locale: Locale, m: ActionMail): Promise<MailMessage> {
  const t = translator(locale);
  const subject = t(m.subject);
  const paragraphs = [t(m.text, m.params)];
  const button = t(m.button);
  const text = [subject, '', ...paragraphs, '', `${button}:`, m.url, '', '-- ', t('mail.footer')].join('\n');
  return { to: m.to, subject, text, html: await html('action', locale, { subject, paragraphs, button, url: m.url }) };
}

/** A confirmation code for a new email address (no sign-in alert: the user is signed in). */
export async function actionlessCodeMessage(locale: Locale, m: { to: string; code: string }): Promise<MailMessage> {
  const t = translator(locale);
  const subject = t('mail.email_code.subject');
  const paragraphs = [t('mail.email_code.text'), m.code, t('mail.code.validity')];
  const text = [subject, '', t('mail.email_code.text'), '', `    ${m.code}`, '', t('mail.code.validity'), '', '-- ', t('mail.footer')].join('\n');
  return { to: m.to, subject, text, html: await html('notice', locale, { subject, paragraphs }) };
}
