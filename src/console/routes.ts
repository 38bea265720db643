// The account console: overview, "Two-Factor Authentication" set-up and turn-off, password change,
// and for admins the users of their own company (admin-users.ts). Issue 8 grows it.
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { totpSetupView } from '../http/totp-setup-view.js';
import { normalizeRecoveryCode, pendingTotpSecret, startTotpSetup, totpStatus, useRecoveryCode, verifyTotp } from '../accounts/totp.js';
import { useTrustedDevice } from '../accounts/trusted-devices.js';
import { changePassword } from '../accounts/lifecycle.js';
import { disableTotp, enableTotp } from '../accounts/two-factor.js';
import { DomainError, describeError } from '../errors.js';
import { formField } from '../http/form.js';
import { pageLocale, render } from '../http/render.js';
import { translator, type MessageKey } from '../i18n/index.js';
import { readTrustTokens } from '../login/trust-cookie.js';
import { Throttled } from '../security/rate-limit.js';
import type { Services } from '../services.js';
import { accountPages } from './account-pages.js';
import { adminUserRoutes } from './admin-users.js';
import { completeSignIn, currentConsole, ensureRecentSignIn, requireConsoleUser } from './session.js';

const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });
const t = (ctx: Context) => translator(pageLocale(ctx));

export function consoleRoutes(services: Services, provider: Provider): Router {
  const { db, config } = services;
  const issuer = config.issuer;
  const router = new Router();
  const signedIn = requireConsoleUser(provider, db, issuer);
  const me = (ctx: Context) => currentConsole(ctx).user;

  /** The trusted-device record of this browser for this user, kept when 2FA changes revoke the others. */
  async function currentDeviceId(ctx: Context, userId: string): Promise<string | undefined> {
    return (await useTrustedDevice(db, services.secrets, userId, readTrustTokens(ctx), request(ctx)))?.id;
  }

  async function statusPage(ctx: Context, extra: { notice?: string; error?: string; errorField?: string; status?: number } = {}) {
    const user = me(ctx);
    const status = await totpStatus(db, user.id);
    const activatedAt = status.activatedAt ? new Intl.DateTimeFormat(pageLocale(ctx), { dateStyle: 'medium' }).format(status.activatedAt) : '';
    const suspendedUntil = status.suspendedUntil ? `${status.suspendedUntil.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
    await render(ctx, 'console/2fa', { mode: 'status', status, activatedAt, suspendedUntil, notice: extra.notice, error: extra.error, errorField: extra.errorField }, extra.status ?? 200);
  }

  async function setupPage(ctx: Context, secret: string, extra: { error?: string; errorField?: string; deviceName?: string; status?: number } = {}) {
    await render(
      ctx,
      'console/2fa',
      {
        mode: 'setup',
        ...(await totpSetupView(config.brandName, me(ctx).email, secret)),
        deviceName: extra.deviceName ?? '',
        error: extra.error,
        errorField: extra.errorField,
        notice: undefined,
      },
      extra.status ?? 200,
    );
  }

  router.get('/account/callback', async (ctx) => {
    const returnTo = typeof ctx.query.error === 'string' ? undefined : await completeSignIn(ctx, provider);
    if (!returnTo) {
      await render(ctx, 'error', { message: t(ctx)('console.error.signin') }, 400);
      return;
    }
    ctx.status = 303;
    ctx.redirect(returnTo);
  });

  router.get('/account', signedIn, async (ctx) => {
    await render(ctx, 'console/home', { user: me(ctx) });
  });

  router.get('/account/2fa', signedIn, async (ctx) => statusPage(ctx));

  router.post('/account/2fa/setup', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/2fa')) return;
    const secret = await startTotpSetup(db, services.secrets, me(ctx).id);
    await setupPage(ctx, secret);
  });

  router.post('/account/2fa/activate', signedIn, async (ctx) => {
    if (!ensureRecentSignIn(ctx, issuer, '/account/2fa')) return;
    const user = me(ctx);
    const secret = await pendingTotpSecret(db, services.secrets, user.id);
    if (!secret) {
      ctx.status = 303;
      ctx.redirect('/account/2fa');
      return;
    }
    const deviceName = (formField(ctx, 'device_name') ?? '').trim();
    const code = (formField(ctx, 'code') ?? '').replace(/\s+/g, '');
    if (!deviceName || [...deviceName].length > 64) {
      await setupPage(ctx, secret, { error: t(ctx)('totp.error.device_name'), errorField: 'device_name', deviceName: deviceName.slice(0, 64), status: 400 });
      return;
    }
    try {
      await services.limits.totpGuessPerUser.check(user.id);
      const recoveryCodes = await enableTotp(services, user, { code, deviceName, request: request(ctx), currentDeviceId: await currentDeviceId(ctx, user.id) });
      await render(ctx, 'console/2fa', { mode: 'codes', recoveryCodes, notice: undefined, error: undefined });
    } catch (error) {
      if (error instanceof DomainError && error.code === 'totp_wrong_code') {
        await services.limits.totpGuessPerUser.consume(user.id).catch(() => undefined);
        await setupPage(ctx, secret, { error: describeError(error, t(ctx)), errorField: 'code', deviceName, status: 400 });
        return;
      }
      throw error;
    }
  });

  router.post('/account/2fa/disable', signedIn, async (ctx) => {
    const user = me(ctx);
    const raw = (formField(ctx, 'code') ?? '').trim();
    const digits = raw.replace(/\s+/g, '');
    await services.limits.totpGuessPerUser.check(user.id);
    const recovery = /^\d{6}$/.test(digits) ? undefined : normalizeRecoveryCode(raw);
    const ok = recovery
      ? await useRecoveryCode(db, services.secrets, user.id, recovery)
      : /^\d{6}$/.test(digits) && (await verifyTotp(db, services.secrets, user.id, digits)) === 'ok';
    if (!ok) {
      await services.limits.totpGuessPerUser.consume(user.id).catch((e: unknown) => {
        if (!(e instanceof Throttled)) throw e;
      });
      await statusPage(ctx, { error: t(ctx)('totp.error.wrong'), errorField: formField(ctx, 'kind') === 'recovery' ? 'recovery-code' : 'code', status: 400 });
      return;
    }
    await disableTotp(services, user, { kind: 'user' }, request(ctx), await currentDeviceId(ctx, user.id));
    await statusPage(ctx, { notice: t(ctx)('totp.disabled') });
  });

  router.get('/account/password', signedIn, async (ctx) => {
    await render(ctx, 'console/password', { error: undefined, notice: undefined, hasPassword: Boolean(me(ctx).password_hash), username: me(ctx).email });
  });

  router.post('/account/password', signedIn, async (ctx) => {
    const user = me(ctx);
    const page = (extra: { error?: string; errorField?: string; notice?: string }, status = 200) =>
      render(ctx, 'console/password', { error: undefined, notice: undefined, hasPassword: true, username: user.email, ...extra }, status);
    // Without a password to confirm (e.g. an account that only used Google), a recent sign-in stands in.
    if (!user.password_hash && !ensureRecentSignIn(ctx, issuer, '/account/password')) return;
    await services.limits.passwordChangePerUser.check(user.id);
    try {
      await changePassword(services, user, {
        currentPassword: formField(ctx, 'current_password') ?? '',
        newPassword: formField(ctx, 'new_password') ?? '',
        request: request(ctx),
        keepSessionUid: currentConsole(ctx).sessionUid,
        keepDeviceId: await currentDeviceId(ctx, user.id),
      });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      if (error.code === 'wrong_password') await services.limits.passwordChangePerUser.consume(user.id).catch(() => undefined);
      await page({ error: describeError(error, t(ctx)), errorField: error.code === 'wrong_password' ? 'current_password' : 'new_password' }, 400);
      return;
    }
    await page({ notice: t(ctx)('change.done') });
  });

  router.use(adminUserRoutes(services, signedIn).routes());
  router.use(accountPages(services, signedIn).routes());

  return router;
}
