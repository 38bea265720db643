// The interaction routes oidc-provider sends the browser to. GET shows whatever step the policy picks;
// POST checks one step's form, then asks the policy again; when it says done, the interaction finishes.
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { findUserById } from '../accounts/users.js';
import { negotiateLocale } from '../i18n/index.js';
import { ACR } from '../oidc/provider.js';
import type { Services } from '../services.js';
import { audit } from '../security/audit.js';
import { showConsent } from './consent.js';
import { deleteFlow, loadFlow, saveFlow, type LoginFlow } from './flow.js';
import { nextStep, type StepName } from './policy.js';
import type { LoginStep, StepInput } from './step.js';
import { passwordStep } from './steps/password.js';

const STEPS: Record<StepName, LoginStep> = {
  password: passwordStep,
};

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

function isStepName(name: string): name is StepName {
  return Object.hasOwn(STEPS, name);
}

export function loginRoutes(services: Services, provider: Provider): Router {
  const router = new Router();

  async function begin(ctx: Context): Promise<{ details: Details; input: StepInput }> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) ctx.throw(400, 'interaction mismatch');
    ctx.state.locale = negotiateLocale({
      uiLocales: typeof details.params.ui_locales === 'string' ? details.params.ui_locales : undefined,
      acceptLanguage: ctx.get('accept-language'),
    });
    const client = await provider.Client.find(String(details.params.client_id));
    const flow = await loadFlow(services.db, details.uid, new Date((details.exp ?? Date.now() / 1000 + 3600) * 1000));
    const input: StepInput = {
      ctx,
      services,
      flow,
      interaction: { uid: details.uid, params: details.params },
      clientName: client?.clientName ?? undefined,
    };
    return { details, input };
  }

  /** Finishes the login prompt once the policy is satisfied. */
  async function finishLogin(ctx: Context, flow: LoginFlow): Promise<void> {
    const user = flow.user_id ? await findUserById(services.db, flow.user_id) : undefined;
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
      details: { amr: result.login.amr, client_id: ctx.state.clientId },
    });
    await deleteFlow(services.db, flow.id);
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  }

  router.get('/interaction/:uid', async (ctx) => {
    const { details, input } = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name === 'consent') return showConsent(services, provider, ctx, details);
    if (details.prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${details.prompt.name}`);
    const next = nextStep(input.flow);
    if ('done' in next) return finishLogin(ctx, input.flow);
    await STEPS[next.step].show(input);
  });

  router.post('/interaction/:uid/:step', async (ctx) => {
    const { details, input } = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name !== 'login' || !isStepName(ctx.params.step!)) ctx.throw(404);
    const next = nextStep(input.flow);
    // A form from an earlier or later step (back button, second tab): show the step that is due now.
    if ('done' in next || next.step !== ctx.params.step) {
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    if (!(await STEPS[next.step].submit(input))) return;
    await saveFlow(services.db, input.flow);
    const after = nextStep(input.flow);
    if ('done' in after) return finishLogin(ctx, input.flow);
    ctx.status = 303;
    ctx.redirect(`/interaction/${details.uid}`);
  });

  router.get('/interaction/:uid/abort', async (ctx) => {
    const { details } = await begin(ctx);
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
