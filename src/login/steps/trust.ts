// Step 3 after a correct email code: "Do you trust this browser and device?" Yes stores a revocable
// server-side record and puts its random token in the trust cookie; No changes nothing.
import { createTrustedDevice } from '../../accounts/trusted-devices.js';
import { formField } from '../../http/form.js';
import { pageLocale, render } from '../../http/render.js';
import { translator } from '../../i18n/index.js';
import { audit } from '../../security/audit.js';
import { describeUserAgent } from '../../security/user-agent.js';
import { stepProgress } from '../policy.js';
import type { LoginStep } from '../step.js';
import { addTrustToken } from '../trust-cookie.js';

export const trustStep: LoginStep = {
  async show({ ctx, interaction, flow }, error) {
    await render(ctx, 'trust', { action: `/interaction/${interaction.uid}/trust`, progress: stepProgress(flow, 'trust'), error: error?.message }, error?.status ?? 200);
  },

  async submit(input) {
    const { ctx, services, flow } = input;
    const answer = formField(ctx, 'trust');
    if (answer !== 'yes' && answer !== 'no') {
      await trustStep.show(input, { status: 400, message: translator(pageLocale(ctx))('error.bad_request') });
      return false;
    }
    if (answer === 'yes' && flow.user_id) {
      const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
      const device = await createTrustedDevice(services.db, services.secrets, flow.user_id, request);
      addTrustToken(ctx, device.token);
      await audit(services.db, { type: 'device.trusted', userId: flow.user_id, ...request, details: { device_id: device.id, ...describeUserAgent(request.userAgent) } });
    }
    flow.state.trustAnswered = true;
    return true;
  },
};
