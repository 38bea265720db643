// Pages reached from mail or from the sign-in page, outside an interaction: the invitation link,
// "Forgot password?" and the password reset link.
import Router from '@koa/router';
import type { Context } from 'koa';
import { requestPasswordReset, resetPassword } from '../accounts/lifecycle.js';
import { lookupUserToken, type UserTokenKind } from '../accounts/user-tokens.js';
import { emailSchema, findUserById } from '../accounts/users.js';
import { redirectToSignIn } from '../console/session.js';
import { DomainError, describeError } from '../errors.js';
import { formField } from '../http/form.js';
import { pageLocale, render } from '../http/render.js';
import { translator, type MessageKey } from '../i18n/index.js';
import { ignoreThrottled, Throttled } from '../security/rate-limit.js';
import type { Services } from '../services.js';
import { setInvitationCookie } from './invitation.js';

const INTERACTION_UID = /^[\w-]{10,64}$/;

export function selfServiceRoutes(services: Services): Router {
  const router = new Router();
  const t = (ctx: Context) => translator(pageLocale(ctx));
  const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });

  /**
   * Looks up a link's token. Unknown tokens count against the client IP (20 an hour); past that every
   * link from that IP gets the 429 page for the rest of the hour. (Tokens have 256 bits: this stops
   * scanning, not a guess that could succeed.)
   */
  async function lookupLink(ctx: Context, kind: UserTokenKind) {
    await services.limits.linkPerIp.check(ctx.ip);
    const found = await lookupUserToken(services.db, services.secrets, kind, ctx.params.token!);
    if (found.status === 'invalid') await services.limits.linkPerIp.consume(ctx.ip).catch(ignoreThrottled);
    return found;
  }

  router.get('/invite/:token', async (ctx) => {
    const found = await lookupLink(ctx, 'invitation');
    if (found.status !== 'valid') {
      await render(ctx, 'error', { message: t(ctx)(`invite.error.${found.status}` as MessageKey) }, found.status === 'invalid' ? 400 : 410);
      return;
    }
    setInvitationCookie(ctx, ctx.params.token!);
    redirectToSignIn(ctx, services.config.issuer, '/account', true);
  });

  function backUrl(ctx: Context, interaction: unknown): string {
    return typeof interaction === 'string' && INTERACTION_UID.test(interaction) ? `/interaction/${interaction}` : '/account';
  }

  router.get('/password/forgot', async (ctx) => {
    const interaction = typeof ctx.query.interaction === 'string' && INTERACTION_UID.test(ctx.query.interaction) ? ctx.query.interaction : '';
    await render(ctx, 'forgot', { sent: false, error: undefined, email: '', interaction, backUrl: backUrl(ctx, interaction) });
  });

  router.post('/password/forgot', async (ctx) => {
    const interaction = formField(ctx, 'interaction') ?? '';
    const raw = (formField(ctx, 'email') ?? '').trim().slice(0, 254);
    const parsed = emailSchema.safeParse(raw);
    const view = { interaction: INTERACTION_UID.test(interaction) ? interaction : '', backUrl: backUrl(ctx, interaction), email: raw };
    if (!parsed.success) {
      await render(ctx, 'forgot', { ...view, sent: false, error: t(ctx)('forgot.error.email'), errorField: 'email' }, 400);
      return;
    }
    await services.limits.resetPerIp.consume(ctx.ip); // a Throttled error becomes a 429 page
    try {
      await services.limits.resetPerEmail.consume(parsed.data);
      await requestPasswordReset(services, parsed.data, request(ctx));
    } catch (error) {
      // Too many requests for this address: say the same as always, send nothing.
      if (!(error instanceof Throttled)) throw error;
    }
    await render(ctx, 'forgot', { ...view, sent: true, error: undefined });
  });

  async function resetForm(ctx: Context, userId: string | undefined, error?: string, status = 200) {
    // The address goes into a hidden username field, so password managers store the new password for it.
    const user = userId ? await findUserById(services.db, userId) : undefined;
    await render(ctx, 'reset', { action: `/password/reset/${ctx.params.token}`, email: user?.email, error, errorField: error ? 'password' : undefined }, status);
  }

  router.get('/password/reset/:token', async (ctx) => {
    const found = await lookupLink(ctx, 'password_reset');
    if (found.status !== 'valid') {
      await render(ctx, 'error', { message: t(ctx)(found.status === 'expired' ? 'reset.error.expired' : 'reset.error.invalid') }, found.status === 'invalid' ? 400 : 410);
      return;
    }
    await resetForm(ctx, found.userId);
  });

  router.post('/password/reset/:token', async (ctx) => {
    await services.limits.linkPerIp.check(ctx.ip);
    try {
      await resetPassword(services, ctx.params.token!, formField(ctx, 'password') ?? '', request(ctx));
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const message = describeError(error, t(ctx));
      if (error.code === 'reset_invalid') await services.limits.linkPerIp.consume(ctx.ip).catch(ignoreThrottled);
      if (error.code.startsWith('reset_')) await render(ctx, 'error', { message }, 400);
      else {
        const found = await lookupUserToken(services.db, services.secrets, 'password_reset', ctx.params.token!);
        await resetForm(ctx, found.status === 'valid' ? found.userId : undefined, message, 400);
      }
      return;
    }
    await render(ctx, 'message', { heading: t(ctx)('reset.heading'), message: t(ctx)('reset.done'), linkUrl: '/account', linkText: t(ctx)('forgot.back') });
  });

  return router;
}
