// Second step of an invitation: "Create password", checked against the password policy.
import { setInitialPassword } from '../../accounts/lifecycle.js';
import { findUserById } from '../../accounts/users.js';
import { DomainError, describeError } from '../../errors.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { translator, type MessageKey } from '../../i18n/index.js';
import { stepProgress } from '../policy.js';
import type { LoginStep } from '../step.js';

export const createPasswordStep: LoginStep = {
  async show({ ctx, interaction, services, flow }, error) {
    const user = await findUserById(services.db, flow.user_id!);
    await render(
      ctx,
      'create-password',
      { action: `/interaction/${interaction.uid}/create_password`, progress: stepProgress(flow, 'create_password'), email: user?.email ?? '', error: error?.message, errorField: error?.field },
      error?.status ?? 200,
    );
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const user = await findUserById(services.db, flow.user_id!);
    if (!user) throw new DomainError('no_user', 'error.session_expired', 400);
    try {
      await setInitialPassword(services, user, formField(ctx, 'password') ?? '', { ip: ctx.ip, userAgent: ctx.get('user-agent') });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await createPasswordStep.show(input, { status: 400, message: describeError(error, translator(pageLocale(ctx))), field: 'password' });
      return false;
    }
    flow.state.amr = [...new Set([...flow.state.amr, 'pwd'])];
    return true;
  },
};
