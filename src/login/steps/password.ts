// Step 1 of DESIGN §2: "Email address or customer number" and "Password". Unknown account, wrong
// password and disabled account give the same message, status and (through a dummy hash) time.
// Guessing is limited three ways (numbers in services.ts, README "Security"): per client IP, per
// account and IP, and per account from all IPs with progressive delays instead of a lock-out.
import { isTrustedDevice } from '../../accounts/trusted-devices.js';
import { findUserByLogin, setPasswordHash } from '../../accounts/users.js';
import { PASSWORD_MAX_LENGTH } from '../../accounts/passwords.js';
import { translator } from '../../i18n/index.js';
import { throttledMessage } from '../../http/errors.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { audit } from '../../security/audit.js';
import { allowImageFrom } from '../../security/headers.js';
import { Throttled } from '../../security/rate-limit.js';
import type { LoginStep, StepInput } from '../step.js';
import { readTrustTokens } from '../trust-cookie.js';

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
    const user = await findUserByLogin(services.db, identifier);
    // One key per account whichever identifier was typed (email or customer number); unknown
    // identifiers are limited the same way, so the limits reveal nothing about which accounts exist.
    const accountKey = user ? `user:${user.id}` : `unknown:${identifier.toLowerCase()}`;
    const { passwordPerIp, passwordPerAccountIp, passwordPerAccount } = services.limits;
    // A browser this user trusts is exempt from the per-account delay, so an attacker guessing from
    // elsewhere cannot keep the user out (the per-IP limits still apply to it).
    const trusted = user ? await isTrustedDevice(services.db, services.secrets, user.id, readTrustTokens(ctx)) : false;
    // Every attempt is counted before the password is checked (atomic upserts), so parallel guesses
    // cannot slip past a limit; the right password gives its points back below.
    try {
      await passwordPerIp.consume(ctx.ip);
      await passwordPerAccountIp.consume(`${accountKey}|${ctx.ip}`);
      if (!trusted) await passwordPerAccount.admit(accountKey);
    } catch (error) {
      if (error instanceof Throttled) return throttled(input, error, identifier, user?.id);
      throw error;
    }

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
      await passwordStep.show(input, { status: 401, message: t('signin.error.invalid'), values: { identifier }, field: ['identifier', 'password'] });
      return false;
    }

    if (needsRehash) await setPasswordHash(services.db, user.id, await services.hasher.hash(password));
    await Promise.all([
      passwordPerIp.refund(ctx.ip),
      passwordPerAccountIp.reset(`${accountKey}|${ctx.ip}`),
      trusted ? undefined : passwordPerAccount.refund(accountKey),
    ]);
    flow.user_id = user.id;
    input.user = user;
    flow.state.amr = [...new Set([...flow.state.amr, 'pwd'])];
    return true;
  },
};

async function throttled(input: StepInput, error: Throttled, identifier: string, userId: string | undefined): Promise<false> {
  const t = translator(pageLocale(input.ctx));
  input.ctx.set('Retry-After', String(error.retryAfterSeconds));
  await audit(input.services.db, {
    type: 'login.throttled',
    userId,
    ip: input.ctx.ip,
    userAgent: input.ctx.get('user-agent'),
    details: { method: 'pwd', retry_after: error.retryAfterSeconds },
  });
  await passwordStep.show(input, {
    status: 429,
    message: throttledMessage(t, error.retryAfterSeconds),
    values: { identifier },
  });
  return false;
}
