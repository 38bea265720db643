// After a sign-in during support's temporary bypass: set the authenticator up again (here, in the
// sign-in), keep the old one (a current code from it ends the bypass), or decide later.
import { pendingTotpSecret, startTotpSetup, verifyTotp } from '../../accounts/totp.js';
import { enableTotp, keepOldTotp } from '../../accounts/two-factor.js';
import { findUserById } from '../../accounts/users.js';
import { DomainError, describeError } from '../../errors.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { totpSetupView } from '../../http/totp-setup-view.js';
import { translator, type MessageKey } from '../../i18n/index.js';
import { Throttled } from '../../security/rate-limit.js';
import { saveFlow } from '../flow.js';
import { stepProgress } from '../policy.js';
import type { LoginStep, StepError, StepInput } from '../step.js';

type Mode = { mode: 'choose' } | { mode: 'setup'; deviceName?: string } | { mode: 'codes'; recoveryCodes: string[] };

async function page(input: StepInput, view: Mode, error?: StepError): Promise<void> {
  const { ctx, interaction, services, flow } = input;
  const until = flow.state.totpBypassUntil ? `${flow.state.totpBypassUntil.slice(0, 16).replace('T', ' ')} UTC` : '';
  let extra: Record<string, unknown> = {};
  if (view.mode === 'setup') {
    const user = (await findUserById(services.db, flow.user_id!))!;
    const secret = (await pendingTotpSecret(services.db, services.secrets, user.id)) ?? (await startTotpSetup(services.db, services.secrets, user.id));
    extra = { ...(await totpSetupView(services.config.brandName, user.email, secret)), deviceName: view.deviceName ?? '' };
  }
  if (view.mode === 'codes') extra = { recoveryCodes: view.recoveryCodes };
  await render(
    ctx,
    'totp-renew',
    { action: `/interaction/${interaction.uid}/totp_renew`, progress: stepProgress(flow, 'totp_renew'), mode: view.mode, until, error: error?.message, errorField: error?.field, ...extra },
    error?.status ?? 200,
  );
}

export const totpRenewStep: LoginStep = {
  async show(input, error) {
    await page(input, { mode: 'choose' }, error);
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const t = translator(pageLocale(ctx));
    const user = await findUserById(services.db, flow.user_id!);
    if (!user) throw new DomainError('no_user', 'error.session_expired', 400);
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const action = formField(ctx, 'action');
    const code = (formField(ctx, 'code') ?? '').replace(/\s+/g, '');

    switch (action) {
      case 'later':
      case 'continue':
        flow.state.totpRenewAnswered = true;
        return true;
      case 'setup':
        await page(input, { mode: 'setup' });
        return false;
      case 'activate': {
        const deviceName = (formField(ctx, 'device_name') ?? '').trim();
        if (!deviceName || [...deviceName].length > 64) {
          await page(input, { mode: 'setup', deviceName: deviceName.slice(0, 64) }, { status: 400, message: t('totp.error.device_name'), field: 'device_name' });
          return false;
        }
        try {
          await services.limits.totpGuessPerUser.check(user.id);
          const recoveryCodes = await enableTotp(services, user, { code, deviceName, request, currentDeviceId: undefined });
          // The new app was just proven: it counts as the second factor of this sign-in too.
          flow.state.amr = [...new Set([...flow.state.amr, 'otp'])];
          await saveFlow(services.db, flow);
          await page(input, { mode: 'codes', recoveryCodes });
        } catch (error) {
          if (error instanceof DomainError && error.code === 'totp_wrong_code') {
            await services.limits.totpGuessPerUser.consume(user.id).catch(() => undefined);
            await page(input, { mode: 'setup', deviceName }, { status: 400, message: describeError(error, t), field: 'code' });
            return false;
          }
          if (error instanceof Throttled) {
            await page(input, { mode: 'setup', deviceName }, { status: 429, message: t('signin.error.throttled', { minutes: Math.ceil(error.retryAfterSeconds / 60) }) });
            return false;
          }
          throw error;
        }
        return false;
      }
      case 'keep': {
        await services.limits.totpGuessPerUser.check(user.id);
        if (!/^\d{6}$/.test(code) || (await verifyTotp(services.db, services.secrets, user.id, code)) !== 'ok') {
          await services.limits.totpGuessPerUser.consume(user.id).catch(() => undefined);
          await page(input, { mode: 'choose' }, { status: 400, message: t('totp.error.wrong'), field: 'keep-code' });
          return false;
        }
        await keepOldTotp(services, user, request);
        flow.state.amr = [...new Set([...flow.state.amr, 'otp'])];
        flow.state.totpRenewAnswered = true;
        return true;
      }
      default:
        await page(input, { mode: 'choose' }, { status: 400, message: t('error.bad_request') });
        return false;
    }
  },
};
