// Step 1 of DESIGN §2: "Email address or customer number" and "Password". Unknown account, wrong
// password and disabled account give the same message, status and (through a dummy hash) time.
import { findUserByLogin, setPasswordHash } from '../../accounts/users.js';
import { PASSWORD_MAX_LENGTH } from '../../accounts/passwords.js';
import { translator } from '../../i18n/index.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { audit } from '../../security/audit.js';
import { Limiter, Throttled } from '../../security/rate-limit.js';
import type { LoginStep, StepInput } from '../step.js';

const MAX_IDENTIFIER = 254;

export const passwordStep: LoginStep = {
  async show({ ctx, services, interaction, clientName }, error) {
    const client = await clientName();
    const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint.slice(0, MAX_IDENTIFIER) : '';
    await render(
      ctx,
      'signin',
      {
        action: `/interaction/${interaction.uid}/password`,
        abortUrl: `/interaction/${interaction.uid}/abort`,
        googleUrl: services.config.google ? `/interaction/${interaction.uid}/google` : undefined,
        forgotUrl: `/password/forgot?interaction=${interaction.uid}`,
        clientName: client,
        identifier: error?.values?.identifier ?? hint,
        error: error?.message,
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
      await passwordStep.show(input, { status: 400, message: t('signin.error.missing'), values: { identifier: identifier.slice(0, MAX_IDENTIFIER) } });
      return false;
    }

    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const idKey = identifier.toLowerCase();
    const { passwordPerIdentifier, passwordPerIp } = services.limits;
    let counters: boolean[];
    try {
      // Both limits in one query; `counters` says which key has failures counted.
      counters = await Limiter.checkAll(services.db, [
        [passwordPerIdentifier, idKey],
        [passwordPerIp, ctx.ip],
      ]);
    } catch (error) {
      if (error instanceof Throttled) return throttled(input, error, identifier);
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
      try {
        await passwordPerIdentifier.consume(idKey);
        await passwordPerIp.consume(ctx.ip);
      } catch (error) {
        if (error instanceof Throttled) return throttled(input, error, identifier);
        throw error;
      }
      await passwordStep.show(input, { status: 401, message: t('signin.error.invalid'), values: { identifier } });
      return false;
    }

    if (needsRehash) await setPasswordHash(services.db, user.id, await services.hasher.hash(password));
    // The right password clears the identifier's failures (nothing to clear when none were counted).
    if (counters[0]) await passwordPerIdentifier.reset(idKey);
    flow.user_id = user.id;
    input.user = user;
    flow.state.amr = [...new Set([...flow.state.amr, 'pwd'])];
    return true;
  },
};

async function throttled(input: StepInput, error: Throttled, identifier: string): Promise<false> {
  const t = translator(pageLocale(input.ctx));
  input.ctx.set('Retry-After', String(error.retryAfterSeconds));
  await audit(input.services.db, { type: 'login.throttled', ip: input.ctx.ip, userAgent: input.ctx.get('user-agent'), details: { method: 'pwd' } });
  await passwordStep.show(input, {
    status: 429,
    message: t('signin.error.throttled', { minutes: Math.max(1, Math.ceil(error.retryAfterSeconds / 60)) }),
    values: { identifier },
  });
  return false;
}
