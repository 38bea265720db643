// The interaction routes oidc-provider sends the browser to. GET shows whatever step the policy picks;
// POST checks one step's form, then asks the policy again; when it says done, the interaction finishes.
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { acceptInvitation } from '../accounts/lifecycle.js';
import { activeTotpDevice } from '../accounts/totp.js';
import { useTrustedDevice } from '../accounts/trusted-devices.js';
import { findUserById } from '../accounts/users.js';
import { negotiateLocale } from '../i18n/index.js';
import { ACR } from '../oidc/provider.js';
import type { Services } from '../services.js';
import { audit } from '../security/audit.js';
import { showConsent } from './consent.js';
import { deleteFlow, loadFlow, saveFlow, type LoginFlow } from './flow.js';
import { nextStep, type StepName } from './policy.js';
import type { LoginStep, StepInput } from './step.js';
import { takeInvitation } from './invitation.js';
import { createPasswordStep } from './steps/create-password.js';
import { emailCodeStep } from './steps/email-code.js';
import { inviteEmailStep } from './steps/invite-email.js';
import { passwordStep } from './steps/password.js';
import { totpStep } from './steps/totp.js';
import { trustStep } from './steps/trust.js';
import { readTrustTokens } from './trust-cookie.js';

const STEPS: Record<StepName, LoginStep> = {
  password: passwordStep,
  totp: totpStep,
  email_code: emailCodeStep,
  trust: trustStep,
  invite_email: inviteEmailStep,
  create_password: createPasswordStep,
};

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

function isStepName(name: string): name is StepName {
  return Object.hasOwn(STEPS, name);
}

export function loginRoutes(services: Services, provider: Provider): Router {
  const router = new Router();

  /** The interaction of this request (and the page's language). */
  async function begin(ctx: Context): Promise<Details> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) ctx.throw(400, 'interaction mismatch');
    ctx.state.locale = negotiateLocale({
      uiLocales: typeof details.params.ui_locales === 'string' ? details.params.ui_locales : undefined,
      acceptLanguage: ctx.get('accept-language'),
    });
    return details;
  }

  /** What a sign-in step gets: the flow (created on first use) and the interaction. */
  async function stepInput(ctx: Context, details: Details): Promise<StepInput> {
    const flow = await loadFlow(services.db, details.uid, new Date((details.exp ?? Date.now() / 1000 + 3600) * 1000));
    let clientName: Promise<string | undefined> | undefined;
    return {
      ctx,
      services,
      flow,
      interaction: { uid: details.uid, params: details.params },
      clientName: () => (clientName ??= provider.Client.find(String(details.params.client_id)).then((c) => c?.clientName ?? undefined)),
    };
  }

  /**
   * Once the user is identified, look up the second factors that apply: an authenticator app, or else
   * whether this browser is one they trust (which skips the email code). An app asking for two factors
   * (acr_values) gets the email code regardless of trust.
   */
  async function evaluateFactors(ctx: Context, details: Details, flow: LoginFlow): Promise<void> {
    if (!flow.user_id || flow.state.factorsEvaluated) return;
    flow.state.factorsEvaluated = true;
    if (flow.state.invitation) return; // an invitation always confirms the address with an email code
    const totpDevice = await activeTotpDevice(services.db, flow.user_id);
    if (totpDevice !== undefined) {
      flow.state.totpDevice = totpDevice ?? '';
      return;
    }
    const requested = typeof details.params.acr_values === 'string' ? details.params.acr_values.split(' ') : [];
    if (requested.includes(ACR.multiFactor)) return;
    const device = await useTrustedDevice(services.db, services.secrets, flow.user_id, readTrustTokens(ctx), { ip: ctx.ip, userAgent: ctx.get('user-agent') });
    if (device) flow.state.trustedDeviceId = device.id;
  }

  /** Finishes the login prompt once the policy is satisfied. */
  async function finishLogin(ctx: Context, input: StepInput): Promise<void> {
    const { flow } = input;
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    let accepted = false;
    if (flow.state.invitation && flow.user_id === flow.state.invitation.userId) {
      await acceptInvitation(services, flow.state.invitation.tokenId, flow.user_id, request);
      accepted = true;
    }
    // The user as the password step of this request loaded it, unless accepting an invitation changed it.
    const loaded = !accepted && input.user?.id === flow.user_id ? input.user : undefined;
    const user = loaded ?? (flow.user_id ? await findUserById(services.db, flow.user_id) : undefined);
    if (!user || user.status !== 'active') ctx.throw(400, 'account not available');
    const amr = flow.state.amr;
    const factors = amr.filter((m) => m !== 'mfa').length;
    const result = {
      login: {
        accountId: user.id,
        amr: factors > 1 ? [...amr, 'mfa'] : amr,
        acr: factors > 1 ? ACR.multiFactor : ACR.singleFactor,
        remember: true,
      },
    };
    await audit(services.db, {
      type: 'login.succeeded',
      userId: user.id,
      customerId: user.customer_id,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { amr: result.login.amr, client_id: ctx.state.clientId, trusted_device_id: flow.state.trustedDeviceId },
    });
    await deleteFlow(services.db, flow.id);
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  }

  router.get('/interaction/:uid', async (ctx) => {
    const details = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name === 'consent') return showConsent(services, provider, ctx, details);
    if (details.prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${details.prompt.name}`);
    const input = await stepInput(ctx, details);
    if (await takeInvitation(ctx, services, input.flow)) await saveFlow(services.db, input.flow);
    const next = nextStep(input.flow);
    if ('done' in next) return finishLogin(ctx, input);
    await STEPS[next.step].show(input);
  });

  router.post('/interaction/:uid/:step', async (ctx) => {
    const details = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name !== 'login' || !isStepName(ctx.params.step!)) ctx.throw(404);
    const input = await stepInput(ctx, details);
    const next = nextStep(input.flow);
    // A form from an earlier or later step (back button, second tab): show the step that is due now.
    if ('done' in next || next.step !== ctx.params.step) {
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    if (!(await STEPS[next.step].submit(input))) return;
    await evaluateFactors(ctx, details, input.flow);
    const after = nextStep(input.flow);
    // A finished sign-in deletes its flow: saving it first would be wasted (should finishing fail, the
    // stored flow lacks this step, which is then asked again).
    if ('done' in after) return finishLogin(ctx, input);
    await saveFlow(services.db, input.flow);
    ctx.status = 303;
    ctx.redirect(`/interaction/${details.uid}`);
  });

  router.get('/interaction/:uid/abort', async (ctx) => {
    const details = await begin(ctx);
    await deleteFlow(services.db, details.uid);
    ctx.respond = false;
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  });

  return router;
}
