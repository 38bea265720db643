// Step 1 of DESIGN §2: "Email address or customer number" and "Password". Unknown account, wrong
// password and disabled account give the same message, status and (through a dummy hash) time.
import { findUserByLogin, setPasswordHash } from '../../accounts/users.js';
import { PASSWORD_MAX_LENGTH } from '../../accounts/passwords.js';
import { translator } from '../../i18n/index.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { audit } from '../../security/audit.js';
import { allowImageFrom } from '../../security/headers.js';
import { Throttled } from '../../security/rate-limit.js';
import type { LoginStep, StepInput } from '../step.js';

const MAX_IDENTIFIER = 254;

export const passwordStep: LoginStep = {
  async show({ ctx, services, interaction, clientName, clientLinks }, error) {
    const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint.slice(0, MAX_IDENTIFIER) : '';
    allowImageFrom(ctx, clientLinks.logoUri);
    await render(
      ctx,
      'signin',
      {
        action: `/interaction/${interaction.uid}/password`,
        abortUrl: `/interaction/${interaction.uid}/abort`,
        googleUrl: services.config.google ? `/interaction/${interaction.uid}/google` : undefined,
        forgotUrl: `/password/forgot?interaction=${interaction.uid}`,
        clientName,
        clientLinks,
        identifier: error?.values?.identifier ?? hint,
        error: error?.message,
        errorField: error?.field,
      },
      error?.status ?? 200,
    );
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const t = translator(pageLocale(ctx));
    const identifier = formField(ctx, 'identifier')?.trim() ?? '';
    const password = formField(ctx, 'password') ?? '';
    if (!identifier || !password || identifier.length > MAX_IDENTIFIER) {
      const field = !identifier || identifier.length > MAX_IDENTIFIER ? 'identifier' : 'password';
      await passwordStep.show(input, { status: 400, message: t('signin.error.missing'), values: { identifier: identifier.slice(0, MAX_IDENTIFIER) }, field });
      return false;
    }

    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const idKey = identifier.toLowerCase();
    const { passwordPerIdentifier, passwordPerIp } = services.limits;
    try {
      await passwordPerIdentifier.check(idKey);
      await passwordPerIp.check(ctx.ip);
    } catch (error) {
      if (error instanceof Throttled) return throttled(input, error, identifier, false);
      throw error;
    }

    const user = await findUserByLogin(services.db, identifier);
    const tooLong = password.length > PASSWORD_MAX_LENGTH;
    const { ok, needsRehash } = await services.hasher.verify(tooLong ? null : user?.password_hash, password);
    if (!ok || !user || user.status !== 'active') {
      await audit(services.db, {
        type: 'login.failed',
        userId: user?.id,
        customerId: user?.customer_id,
        ...request,
        details: { method: 'pwd', reason: !user ? 'unknown_account' : !ok ? 'wrong_password' : `status_${user.status}` },
      });
      // Every failure counts on both keys, even when one of them is already over its limit.
      const counted = await Promise.allSettled([passwordPerIdentifier.consume(idKey), passwordPerIp.consume(ctx.ip)]);
      const failure = counted.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) {
        if (failure.reason instanceof Throttled) return throttled(input, failure.reason, identifier, true);
        throw failure.reason;
      }
      await passwordStep.show(input, { status: 401, message: t('signin.error.invalid'), values: { identifier }, field: ['identifier', 'password'] });
      return false;
    }

    if (needsRehash) await setPasswordHash(services.db, user.id, await services.hasher.hash(password));
    await passwordPerIdentifier.reset(idKey);
    flow.user_id = user.id;
    flow.state.amr = [...new Set([...flow.state.amr, 'pwd'])];
    return true;
  },
};

/** `checked`: this attempt's password was checked (and counted) before the limit was reached. */
async function throttled(input: StepInput, error: Throttled, identifier: string, checked: boolean): Promise<false> {
  const t = translator(pageLocale(input.ctx));
  input.ctx.set('Retry-After', String(error.retryAfterSeconds));
  await audit(input.services.db, { type: 'login.throttled', ip: input.ctx.ip, userAgent: input.ctx.get('user-agent'), details: { method: 'pwd', checked } });
  await passwordStep.show(input, {
    status: 429,
    message: t('signin.error.throttled', { minutes: Math.max(1, Math.ceil(error.retryAfterSeconds / 60)) }),
    values: { identifier },
  });
  return false;
}
