// The account console's own pages: profile and email address, trusted browsers, sessions and apps,
// device credentials (SIP passwords), the security log, and the guided "Secure my account".
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { renewAllDeviceCredentials, createDeviceCredential, deleteDeviceCredential, listDeviceCredentials, renewDeviceCredential, type IssuedCredential } from '../accounts/device-credentials.js';
import { changePasswordWithoutCurrent } from '../accounts/lifecycle.js';
import { confirmEmailChange, pendingEmailChange, startEmailChange, updateProfile } from '../accounts/profile.js';
import { listTrustedDevices, revokeAllTrustedDevices, revokeTrustedDevice, useTrustedDevice } from '../accounts/trusted-devices.js';
import { DomainError, describeError } from '../errors.js';
import { formField } from '../http/form.js';
import { LANG_COOKIE, pageLocale, render } from '../http/render.js';
import { negotiateLocale, translator } from '../i18n/index.js';
import { readTrustTokens } from '../login/trust-cookie.js';
import { MailDeliveryError } from '../mail/mailer.js';
import { endUserSession, endUserSessions, listUserApps, listUserSessions, revokeAppAccess } from '../oidc/sessions.js';
import { audit } from '../security/audit.js';
import type { Services } from '../services.js';
import { currentConsole, ensureRecentSignIn } from './session.js';
import { securityLog } from './security-log.js';

export function accountPages(services: Services, signedIn: Middleware): Router {
  const { db, secrets } = services;
  const issuer = services.config.issuer;
  const router = new Router();
  const t = (ctx: Context) => translator(pageLocale(ctx));
  const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });
  const me = (ctx: Context) => currentConsole(ctx).user;
  const fmt = (ctx: Context) => {
    const format = new Intl.DateTimeFormat(pageLocale(ctx) === 'de' ? 'de-DE' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
    return (date: Date) => `${format.format(date)} UTC`;
  };
  const thisDeviceId = async (ctx: Context) => (await useTrustedDevice(db, secrets, me(ctx).id, readTrustTokens(ctx), request(ctx)))?.id;
  /** A domain error's text in the page's language, its status, and the field it is about (by its code). */
  const message = (ctx: Context, error: unknown, fields: Record<string, string> = {}) => {
    if (error instanceof DomainError) return { text: describeError(error, t(ctx)), status: error.status, field: fields[error.code] ?? fields['*'] };
    throw error;
  };

  // Profile: name, language, email address (confirmed with a code sent to the new address).
  async function profilePage(ctx: Context, extra: { notice?: string; error?: string; errorField?: string | undefined } = {}, status = 200) {
    await render(ctx, 'console/profile', { user: me(ctx), pendingEmail: await pendingEmailChange(db, me(ctx).id), notice: extra.notice, error: extra.error, errorField: extra.errorField }, status);
  }
  router.get('/account/profile', signedIn, (ctx) => profilePage(ctx));
  router.post('/account/profile', signedIn, async (ctx) => {
    try {
      await updateProfile(db, me(ctx), { name: formField(ctx, 'name') ?? '', locale: formField(ctx, 'locale') ?? '' }, request(ctx));
    } catch (error) {
      const m = message(ctx, error, { invalid_name: 'name', invalid_locale: 'locale' });
      return profilePage(ctx, { error: m.text, errorField: m.field }, m.status);
    }
    // A language saved here takes over from the switcher's choice on this browser.
    ctx.cookies.set(LANG_COOKIE, null, { overwrite: true });
    const saved = formField(ctx, 'locale') || null;
    ctx.state.locale = negotiateLocale({ saved, acceptLanguage: ctx.get('accept-language') });
    currentConsole(ctx).user = { ...me(ctx), name: (formField(ctx, 'name') ?? '').trim(), locale: saved };
    await profilePage(ctx, { notice: t(ctx)('profile.saved') });
  });
  router.post('/account/profile/email', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/profile')) return;
    try {
      await startEmailChange(services, me(ctx), formField(ctx, 'new_email') ?? '', request(ctx));
    } catch (error) {
      if (error instanceof MailDeliveryError) return profilePage(ctx, { error: t(ctx)('code.error.delivery') }, 503);
      const m = message(ctx, error, { '*': 'new_email' });
      return profilePage(ctx, { error: m.text, errorField: m.field }, m.status);
    }
    await profilePage(ctx);
  });
  router.post('/account/profile/email/confirm', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/profile')) return;
    let email: string;
    try {
      email = await confirmEmailChange(services, me(ctx), (formField(ctx, 'code') ?? '').replace(/\s+/g, ''), request(ctx), await thisDeviceId(ctx));
    } catch (error) {
      const m = message(ctx, error, { wrong_code: 'code', email_unavailable: 'new_email' });
      return profilePage(ctx, { error: m.text, errorField: m.field }, m.status);
    }
    currentConsole(ctx).user = { ...me(ctx), email };
    await profilePage(ctx, { notice: t(ctx)('profile.email.changed', { email }) });
  });

  // Trusted browsers.
  async function devicesPage(ctx: Context, notice?: string) {
    const current = await thisDeviceId(ctx);
    const { describeUserAgent } = await import('../security/user-agent.js');
    const devices = (await listTrustedDevices(db, me(ctx).id)).map((d) => {
      const ua = describeUserAgent(d.user_agent ?? undefined);
      return { ...d, browser: `${ua.browser} · ${ua.os}`, current: d.id === current };
    });
    await render(ctx, 'console/devices', { devices, notice, fmt: fmt(ctx) });
  }
  router.get('/account/devices', signedIn, (ctx) => devicesPage(ctx));
  router.post('/account/devices/revoke-all', signedIn, async (ctx) => {
    const count = await revokeAllTrustedDevices(db, me(ctx).id);
    await audit(db, { type: 'device.revoked', userId: me(ctx).id, ...request(ctx), details: { all: true, count } });
    await devicesPage(ctx, t(ctx)('devices.revoked_all'));
  });
  router.post('/account/devices/:id/revoke', signedIn, async (ctx) => {
    if (!/^[0-9a-f-]{36}$/.test(ctx.params.id!) || !(await revokeTrustedDevice(db, me(ctx).id, ctx.params.id!))) {
      throw new DomainError('not_found', 'error.not_found', 404);
    }
    await audit(db, { type: 'device.revoked', userId: me(ctx).id, ...request(ctx), details: { device_id: ctx.params.id } });
    await devicesPage(ctx, t(ctx)('devices.revoked'));
  });

  // Sessions and apps.
  async function appName(clientId: string): Promise<string> {
    const client = await services.provider?.Client.find(clientId).catch(() => undefined);
    return client?.clientName ?? clientId;
  }
  async function sessionsPage(ctx: Context, notice?: string) {
    const userId = me(ctx).id;
    const currentUid = currentConsole(ctx).sessionUid;
    const sessions = await Promise.all(
      (await listUserSessions(db, userId)).map(async (s) => ({ ...s, current: s.uid === currentUid, apps: await Promise.all(s.clientIds.map(appName)) })),
    );
    const apps = await Promise.all((await listUserApps(db, userId)).map(async (clientId) => ({ clientId, name: await appName(clientId) })));
    await render(ctx, 'console/sessions', { sessions, apps, notice, fmt: fmt(ctx) });
  }
  router.get('/account/sessions', signedIn, (ctx) => sessionsPage(ctx));
  router.post('/account/sessions/end-all', signedIn, async (ctx) => {
    const userId = me(ctx).id;
    const ended = await endUserSessions(services, userId);
    const devices = await revokeAllTrustedDevices(db, userId);
    await audit(db, { type: 'sessions.ended', userId, ...request(ctx), details: { ...ended, trusted_devices_revoked: devices } });
    ctx.status = 303;
    ctx.redirect('/account');
  });
  router.post('/account/sessions/:uid/end', signedIn, async (ctx) => {
    if (!(await endUserSession(services, me(ctx).id, ctx.params.uid!))) throw new DomainError('not_found', 'error.not_found', 404);
    await audit(db, { type: 'session.ended', userId: me(ctx).id, ...request(ctx) });
    await sessionsPage(ctx, t(ctx)('sessions.ended'));
  });
  router.post('/account/apps/:clientId/revoke', signedIn, async (ctx) => {
    const clientId = ctx.params.clientId!;
    if (!(await revokeAppAccess(db, me(ctx).id, clientId))) throw new DomainError('not_found', 'error.not_found', 404);
    await audit(db, { type: 'app.revoked', userId: me(ctx).id, ...request(ctx), details: { client_id: clientId } });
    await sessionsPage(ctx, t(ctx)('sessions.apps.revoked', { app: await appName(clientId) }));
  });

  // Device credentials (SIP passwords). Issuing or renewing a secret needs a recent sign-in.
  async function credentialsPage(ctx: Context, extra: { issued?: IssuedCredential[]; notice?: string; error?: string; errorField?: string | undefined } = {}, status = 200) {
    const devices = await listDeviceCredentials(db, me(ctx).id);
    await render(ctx, 'console/device-credentials', { devices, issued: extra.issued ?? [], notice: extra.notice, error: extra.error, errorField: extra.errorField, fmt: fmt(ctx) }, status);
  }
  router.get('/account/device-credentials', signedIn, (ctx) => credentialsPage(ctx));
  router.post('/account/device-credentials', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/device-credentials')) return;
    try {
      const issued = await createDeviceCredential(db, secrets, me(ctx), formField(ctx, 'label') ?? '');
      await audit(db, { type: 'device_credential.created', userId: me(ctx).id, ...request(ctx), details: { id: issued.id, username: issued.username } });
      await credentialsPage(ctx, { issued: [issued] });
    } catch (error) {
      const m = message(ctx, error, { invalid_label: 'label' });
      await credentialsPage(ctx, { error: m.text, errorField: m.field }, m.status);
    }
  });
  router.post('/account/device-credentials/renew-all', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/device-credentials')) return;
    const issued = await renewAllDeviceCredentials(db, secrets, me(ctx).id);
    await audit(db, { type: 'device_credential.renewed', userId: me(ctx).id, ...request(ctx), details: { all: true, count: issued.length } });
    await credentialsPage(ctx, { issued });
  });
  router.post('/account/device-credentials/:id/renew', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/device-credentials')) return;
    const issued = await renewDeviceCredential(db, secrets, me(ctx).id, ctx.params.id!).catch((e: unknown) => {
      if (e instanceof DomainError || /uuid/i.test(String((e as Error).message))) throw new DomainError('not_found', 'device.error.not_found', 404);
      throw e;
    });
    await audit(db, { type: 'device_credential.renewed', userId: me(ctx).id, ...request(ctx), details: { id: issued.id } });
    await credentialsPage(ctx, { issued: [issued] });
  });
  router.post('/account/device-credentials/:id/delete', signedIn, async (ctx) => {
    const deleted = await deleteDeviceCredential(db, me(ctx).id, ctx.params.id!).catch((e: unknown) => {
      if (e instanceof DomainError || /uuid/i.test(String((e as Error).message))) throw new DomainError('not_found', 'device.error.not_found', 404);
      throw e;
    });
    await audit(db, { type: 'device_credential.deleted', userId: me(ctx).id, ...request(ctx), details: { id: deleted.id, username: deleted.username } });
    await credentialsPage(ctx, { notice: t(ctx)('device.deleted') });
  });

  // The security log.
  router.get('/account/security-log', signedIn, async (ctx) => {
    const events = await securityLog(db, me(ctx).id, t(ctx), { limit: 200 });
    await render(ctx, 'console/log', { events, fmt: fmt(ctx) });
  });

  // "Secure my account": new password, every device secret renewed, signed out everywhere, then the
  // changes of the last 30 days to review. Needs a fresh sign-in.
  router.get('/account/secure', signedIn, async (ctx) => {
    await render(ctx, 'console/secure', { done: false, user: me(ctx), error: undefined, issued: [], changes: [] });
  });
  router.post('/account/secure', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/secure')) return;
    const user = me(ctx);
    try {
      await changePasswordWithoutCurrent(services, user, formField(ctx, 'new_password') ?? '', request(ctx), { sessionUid: currentConsole(ctx).sessionUid });
    } catch (error) {
      const m = message(ctx, error, { '*': 'new_password' });
      return render(ctx, 'console/secure', { done: false, user, error: m.text, errorField: m.field, issued: [], changes: [] }, m.status);
    }
    // The new password already ended every other session and refresh token and revoked all trusted browsers.
    const issued = await renewAllDeviceCredentials(db, secrets, user.id);
    await audit(db, { type: 'account.secured', userId: user.id, customerId: user.customer_id, ...request(ctx), details: { device_credentials_renewed: issued.length } });
    const changes = await securityLog(db, user.id, t(ctx), { sinceDays: 30, changesOnly: true });
    await render(ctx, 'console/secure', { done: true, user, error: undefined, issued, changes, fmt: fmt(ctx) });
  });

  return router;
}
