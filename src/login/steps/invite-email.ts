// First step of an invitation: the invitee types the address the invitation went to ("Sign in with
// email"). Only that address continues; a few wrong tries lock the link for a while.
import { findUserById } from '../../accounts/users.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { translator } from '../../i18n/index.js';
import { audit } from '../../security/audit.js';
import { safeEqual } from '../../security/crypto.js';
import { ignoreThrottled, Throttled } from '../../security/rate-limit.js';
import { throttledMessage } from '../../http/errors.js';
import { stepProgress } from '../policy.js';
import type { LoginStep } from '../step.js';

export const inviteEmailStep: LoginStep = {
  async show({ ctx, interaction, flow }, error) {
    await render(
      ctx,
      'invite-email',
      { action: `/interaction/${interaction.uid}/invite_email`, progress: stepProgress(flow, 'invite_email'), email: error?.values?.email ?? '', error: error?.message, errorField: error?.field },
      error?.status ?? 200,
    );
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const t = translator(pageLocale(ctx));
    const invitation = flow.state.invitation!;
    const email = (formField(ctx, 'email') ?? '').trim().toLowerCase().slice(0, 254);
    try {
      await services.limits.invitationEmailPerToken.check(invitation.tokenId);
      await services.limits.linkPerIp.check(ctx.ip);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      await inviteEmailStep.show(input, { status: 429, message: throttledMessage(t, error.retryAfterSeconds), values: { email } });
      return false;
    }
    const user = await findUserById(services.db, invitation.userId);
    if (!user || user.status !== 'invited' || !safeEqual(user.email.toLowerCase(), email)) {
      await services.limits.invitationEmailPerToken.consume(invitation.tokenId).catch(ignoreThrottled);
      await services.limits.linkPerIp.consume(ctx.ip).catch(ignoreThrottled);
      await audit(services.db, { type: 'invitation.wrong_email', userId: invitation.userId, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      await inviteEmailStep.show(input, { status: 400, message: t('invite.error.email'), values: { email }, field: 'email' });
      return false;
    }
    flow.user_id = user.id;
    return true;
  },
};
