// Step 2 for accounts without TOTP on a browser the user has not trusted: a six-digit code by email.
// The email doubles as a security alert (time, IP, browser, what to do if it was not you).
import { checkEmailCode, discardEmailCode, hasPendingEmailCode, issueEmailCode } from '../../accounts/email-codes.js';
import { findUserById, markEmailVerified, type UserWithCustomer } from '../../accounts/users.js';
import { formField, maskEmail } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { translator } from '../../i18n/index.js';
import { MailDeliveryError } from '../../mail/mailer.js';
import { signInCodeMessage } from '../../mail/messages.js';
import { audit } from '../../security/audit.js';
import { ignoreThrottled, Throttled } from '../../security/rate-limit.js';
import { throttledMessage } from '../../http/errors.js';
import { describeUserAgent } from '../../security/user-agent.js';
import { stepProgress } from '../policy.js';
import type { LoginStep, StepInput } from '../step.js';

interface PageState {
  status?: number;
  error?: string;
  /** The error is about the typed code (not about sending one). */
  codeError?: boolean;
  notice?: string;
  deliveryFailed?: boolean;
}

async function page(input: StepInput, user: UserWithCustomer, state: PageState = {}): Promise<void> {
  const { ctx, interaction } = input;
  await render(
    ctx,
    'email-code',
    {
      progress: stepProgress(input.flow, 'email_code'),
      errorField: state.codeError ? 'code' : undefined,
      action: `/interaction/${interaction.uid}/email_code`,
      abortUrl: `/interaction/${interaction.uid}/abort`,
      maskedEmail: maskEmail(user.email),
      error: state.error,
      notice: state.notice,
      deliveryFailed: Boolean(state.deliveryFailed),
    },
    state.status ?? 200,
  );
}

/** Sends a fresh code. Returns the page state to show (an error when throttled or undeliverable). */
async function sendCode(input: StepInput, user: UserWithCustomer): Promise<PageState> {
  const { ctx, services, flow } = input;
  const t = translator(pageLocale(ctx));
  try {
    await services.limits.codeSendPerUser.consume(user.id);
  } catch (error) {
    if (!(error instanceof Throttled)) throw error;
    ctx.set('Retry-After', String(error.retryAfterSeconds));
    services.metrics.codesSent.inc({ channel: 'email', outcome: 'throttled' });
    return { status: 429, error: t('code.error.resend_limit', { minutes: Math.max(1, Math.ceil(error.retryAfterSeconds / 60)) }) };
  }
  const { id, code } = await issueEmailCode(services.db, services.secrets, { flowId: flow.id, userId: user.id });
  const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
  const message = await signInCodeMessage(pageLocale(ctx), { to: user.email, code, when: new Date(), ip: ctx.ip, device: describeUserAgent(request.userAgent), secureUrl: `${services.config.issuer}/account/secure` });
  try {
    await services.mailer.send(message);
  } catch (error) {
    if (!(error instanceof MailDeliveryError)) throw error;
    // Nothing half-done stays behind: the undelivered code is removed and does not count against the limit.
    await discardEmailCode(services.db, id);
    await services.limits.codeSendPerUser.refund(user.id);
    await audit(services.db, { type: 'code.delivery_failed', userId: user.id, customerId: user.customer_id, ...request });
    services.metrics.codesSent.inc({ channel: 'email', outcome: 'failed' });
    return { status: 503, error: t('code.error.delivery'), deliveryFailed: true };
  }
  await audit(services.db, { type: 'code.sent', userId: user.id, customerId: user.customer_id, ...request, details: { channel: 'email' } });
  services.metrics.codesSent.inc({ channel: 'email', outcome: 'sent' });
  return {};
}

async function currentUser(input: StepInput): Promise<UserWithCustomer> {
  const user = input.flow.user_id ? await findUserById(input.services.db, input.flow.user_id) : undefined;
  if (!user) input.ctx.throw(400, 'sign-in has no user');
  return user;
}

export const emailCodeStep: LoginStep = {
  async show(input) {
    const user = await currentUser(input);
    // Entering the step sends the first code; reloading the page does not send another.
    const state = (await hasPendingEmailCode(input.services.db, input.flow.id)) ? {} : await sendCode(input, user);
    await page(input, user, state);
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const t = translator(pageLocale(ctx));
    const user = await currentUser(input);
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };

    if (formField(ctx, 'action') === 'resend') {
      try {
        await services.limits.codeResendPerUser.consume(user.id);
      } catch (error) {
        if (!(error instanceof Throttled)) throw error;
        ctx.set('Retry-After', String(error.retryAfterSeconds));
        await page(input, user, { status: 429, error: t('code.error.resend_wait', { seconds: error.retryAfterSeconds }) });
        return false;
      }
      const state = await sendCode(input, user);
      if (state.deliveryFailed) await services.limits.codeResendPerUser.refund(user.id);
      await page(input, user, state.error ? state : { notice: t('code.sent_again', { email: maskEmail(user.email) }) });
      return false;
    }

    const code = (formField(ctx, 'code') ?? '').replace(/\s+/g, '');
    if (!/^\d{6}$/.test(code)) {
      await page(input, user, { status: 400, error: t('code.error.format'), codeError: true });
      return false;
    }
    try {
      await services.limits.codeGuessPerUser.check(user.id);
      await services.limits.secondFactorPerIp.check(ctx.ip);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      await page(input, user, { status: 429, error: throttledMessage(t, error.retryAfterSeconds) });
      return false;
    }

    const result = await checkEmailCode(services.db, services.secrets, { flowId: flow.id, userId: user.id, code });
    if (result !== 'ok') {
      if (result === 'wrong' || result === 'locked') {
        await services.limits.codeGuessPerUser.consume(user.id).catch(ignoreThrottled);
        await services.limits.secondFactorPerIp.consume(ctx.ip).catch(ignoreThrottled);
      }
      await audit(services.db, { type: 'code.failed', userId: user.id, customerId: user.customer_id, ...request, details: { reason: result } });
      const messages = { wrong: 'code.error.wrong', locked: 'code.error.locked', expired: 'code.error.expired', none: 'code.error.expired' } as const;
      await page(input, user, { status: result === 'wrong' ? 401 : 400, error: t(messages[result]), codeError: result === 'wrong' });
      return false;
    }

    await markEmailVerified(services.db, user.id);
    await audit(services.db, { type: 'code.verified', userId: user.id, customerId: user.customer_id, ...request });
    flow.state.amr = [...new Set([...flow.state.amr, 'mca'])];
    return true;
  },
};
