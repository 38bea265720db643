// Step 2 for accounts with an authenticator app: the six-digit TOTP code (or a single-use recovery
// code), on every sign-in, trusted browser or not. Wrong codes say nothing beyond "not correct".
import { normalizeRecoveryCode, useRecoveryCode, verifyTotp } from '../../accounts/totp.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { translator } from '../../i18n/index.js';
import { audit } from '../../security/audit.js';
import { ignoreThrottled, Throttled } from '../../security/rate-limit.js';
import { throttledMessage } from '../../http/errors.js';
import { stepProgress } from '../policy.js';
import type { LoginStep } from '../step.js';

export const totpStep: LoginStep = {
  async show({ ctx, interaction, flow }, error) {
    await render(
      ctx,
      'totp',
      {
        progress: stepProgress(flow, 'totp'),
        errorField: error?.field,
        action: `/interaction/${interaction.uid}/totp`,
        abortUrl: `/interaction/${interaction.uid}/abort`,
        deviceName: flow.state.totpDevice ?? '',
        error: error?.message,
      },
      error?.status ?? 200,
    );
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const t = translator(pageLocale(ctx));
    const userId = flow.user_id!;
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const raw = (formField(ctx, 'code') ?? '').trim();
    // The page has a form for the app's code and one for a recovery code.
    const field = formField(ctx, 'kind') === 'recovery' ? 'recovery-code' : 'code';
    const digits = raw.replace(/\s+/g, '');
    const recovery = /^\d{6}$/.test(digits) ? undefined : normalizeRecoveryCode(raw);
    if (!/^\d{6}$/.test(digits) && !recovery) {
      await totpStep.show(input, { status: 400, message: t('totp.error.format'), field });
      return false;
    }
    try {
      await services.limits.totpGuessPerUser.check(userId);
      await services.limits.secondFactorPerIp.check(ctx.ip);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      await totpStep.show(input, { status: 429, message: throttledMessage(t, error.retryAfterSeconds) });
      return false;
    }

    const ok = recovery
      ? await useRecoveryCode(services.db, services.secrets, userId, recovery)
      : (await verifyTotp(services.db, services.secrets, userId, digits)) === 'ok';
    if (!ok) {
      await audit(services.db, { type: 'totp.failed', userId, ...request, details: { kind: recovery ? 'recovery_code' : 'totp' } });
      await services.limits.totpGuessPerUser.consume(userId).catch(ignoreThrottled);
      await services.limits.secondFactorPerIp.consume(ctx.ip).catch(ignoreThrottled);
      await totpStep.show(input, { status: 401, message: t('totp.error.wrong'), field });
      return false;
    }
    if (recovery) await audit(services.db, { type: 'totp.recovery_code_used', userId, ...request });
    flow.state.amr = [...new Set([...flow.state.amr, 'otp'])];
    return true;
  },
};
