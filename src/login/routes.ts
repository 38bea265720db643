// The interaction routes oidc-provider sends the browser to. GET shows whatever step the policy picks;
// POST checks one step's form, then asks the policy again; when it says done, the interaction finishes.
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { acceptInvitation } from '../accounts/lifecycle.js';
import { totpAtSignIn } from '../accounts/totp.js';
import { expireBypasses } from '../accounts/two-factor.js';
import { useTrustedDevice } from '../accounts/trusted-devices.js';
import { findUserById, type UserWithCustomer } from '../accounts/users.js';
import { pageLocale, setPageLocale } from '../http/render.js';
import { negotiateLocale, translator } from '../i18n/index.js';
import type { SignInOutcome } from '../metrics.js';
import { ACR } from '../oidc/provider.js';
import type { Services } from '../services.js';
import { audit } from '../security/audit.js';
import { showConsent } from './consent.js';
import { deleteFlow, endFlow, loadFlow, saveFlow, type LoginFlow } from './flow.js';
import { registerGoogleRoutes } from './google.js';
import { GoogleUpstream } from './google-upstream.js';
import { nextStep, type StepName } from './policy.js';
import type { ClientLinks, LoginStep, StepInput } from './step.js';
import { takeInvitation } from './invitation.js';
import { createPasswordStep } from './steps/create-password.js';
import { emailCodeStep } from './steps/email-code.js';
import { inviteEmailStep } from './steps/invite-email.js';
import { passwordStep } from './steps/password.js';
import { totpStep } from './steps/totp.js';
import { totpRenewStep } from './steps/totp-renew.js';
import { trustStep } from './steps/trust.js';
import { readTrustTokens } from './trust-cookie.js';

/** The acr values the app asked for: acr_values, and the claims parameter's id_token acr (value or values). */
function requestedAcrs(details: Details): string[] {
  const requested = typeof details.params.acr_values === 'string' ? details.params.acr_values.split(' ') : [];
  const acr = parseClaims(details)?.id_token?.acr;
  if (acr && typeof acr === 'object') {
    const { value, values } = acr as { value?: unknown; values?: unknown };
    if (typeof value === 'string') requested.push(value);
    if (Array.isArray(values)) requested.push(...values.filter((v): v is string => typeof v === 'string'));
  }
  return requested;
}

function parseClaims(details: Details): { id_token?: Record<string, unknown> } | undefined {
  if (typeof details.params.claims !== 'string') return undefined;
  try {
    const claims: unknown = JSON.parse(details.params.claims);
    return typeof claims === 'object' && claims !== null ? (claims as { id_token?: Record<string, unknown> }) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The account the app asked for: the sub of its id_token_hint (oidc-provider verified the hint's signature
 * at the authorization endpoint) or the claims parameter's id_token sub value. Our sub is the user id.
 */
function expectedSubject(details: Details): string | undefined {
  const hint = details.params.id_token_hint;
  if (typeof hint === 'string') {
    try {
      const payload: unknown = JSON.parse(Buffer.from(hint.split('.')[1] ?? '', 'base64url').toString('utf8'));
      const sub = (payload as { sub?: unknown } | null)?.sub;
      if (typeof sub === 'string') return sub;
    } catch {
      // oidc-provider refused a malformed hint before any interaction started.
    }
  }
  const sub = parseClaims(details)?.id_token?.sub;
  const value = sub && typeof sub === 'object' ? (sub as { value?: unknown }).value : undefined;
  return typeof value === 'string' ? value : undefined;
}

function clientLinks(client: Awaited<ReturnType<Provider['Client']['find']>>): ClientLinks {
  const metadata: Record<string, unknown> = client?.metadata() ?? {};
  const uri = (name: string) => (typeof metadata[name] === 'string' ? (metadata[name] as string) : undefined);
  return { logoUri: uri('logo_uri'), policyUri: uri('policy_uri'), tosUri: uri('tos_uri') };
}

const STEPS: Record<StepName, LoginStep> = {
  password: passwordStep,
  totp: totpStep,
  email_code: emailCodeStep,
  trust: trustStep,
  invite_email: inviteEmailStep,
  create_password: createPasswordStep,
  totp_renew: totpRenewStep,
};

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

function isStepName(name: string): name is StepName {
  return Object.hasOwn(STEPS, name);
}

/** A step that did not pass answered with its own page: 401 wrong secret, 429 throttled, 4xx bad input. */
function stepOutcome(status: number): SignInOutcome {
  if (status === 401) return 'failure';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'error';
  return 'invalid';
}

export function loginRoutes(services: Services, provider: Provider): Router {
  const router = new Router();

  async function begin(ctx: Context): Promise<{ details: Details; input: StepInput }> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) ctx.throw(400, 'interaction mismatch');
    const client = await provider.Client.find(String(details.params.client_id));
    const flow = await loadFlow(services.db, details.uid, new Date((details.exp ?? Date.now() / 1000 + 3600) * 1000));
    // The page language: switcher, the app's ui_locales, then (once known) the user's saved language.
    const userId = flow.user_id ?? (details.prompt.name === 'consent' ? details.session?.accountId : undefined);
    setPageLocale(ctx, {
      uiLocales: typeof details.params.ui_locales === 'string' ? details.params.ui_locales : undefined,
      saved: userId ? (await findUserById(services.db, userId))?.locale : undefined,
    });
    const input: StepInput = {
      ctx,
      services,
      flow,
      interaction: { uid: details.uid, params: details.params },
      clientName: client?.clientName ?? undefined,
      clientLinks: clientLinks(client),
    };
    return { details, input };
  }

  /**
   * Once the user is identified, look up the second factors that apply: an authenticator app, or else
   * whether this browser is one they trust (which skips the email code). An app asking for two factors
   * (acr_values) gets the email code regardless of trust. After Google only the authenticator app
   * applies (no email code, so trust is not looked up).
   */
  async function evaluateFactors(ctx: Context, details: Details, flow: LoginFlow): Promise<void> {
    if (!flow.user_id || flow.state.factorsEvaluated) return;
    flow.state.factorsEvaluated = true;
    if (flow.state.invitation) return; // an invitation always confirms the address with an email code
    let totp = await totpAtSignIn(services.db, flow.user_id);
    if (totp.bypassExpired) {
      // The bypass's time is up: end it (audited); the authenticator app is required again.
      await expireBypasses(services, flow.user_id);
      totp = await totpAtSignIn(services.db, flow.user_id);
    }
    if (totp.suspendedUntil) {
      flow.state.totpBypassUntil = totp.suspendedUntil.toISOString();
      await audit(services.db, { type: 'totp.bypass_used', userId: flow.user_id, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      return;
    }
    if (totp.active) {
      flow.state.totpDevice = totp.deviceName ?? '';
      return;
    }
    if (flow.state.amr.includes('fed')) return;
    if (requestedAcrs(details).includes(ACR.multiFactor)) return;
    const device = await useTrustedDevice(services.db, services.secrets, flow.user_id, readTrustTokens(ctx), { ip: ctx.ip, userAgent: ctx.get('user-agent') });
    if (device) flow.state.trustedDeviceId = device.id;
  }

  /** After a step identified the user or passed: second factors, save, then finish or show what is due. */
  async function proceed(ctx: Context, details: Details, flow: LoginFlow, loadedUser?: UserWithCustomer): Promise<void> {
    await evaluateFactors(ctx, details, flow);
    // A finished sign-in deletes its flow: saving it first would be wasted (should finishing fail, the
    // stored flow lacks this step, which is then asked again).
    if ('done' in nextStep(flow)) return finishLogin(ctx, flow, loadedUser);
    await saveFlow(services.db, flow);
    ctx.status = 303;
    ctx.redirect(`/interaction/${details.uid}`);
  }

  /** Finishes the login prompt once the policy is satisfied. */
  async function finishLogin(ctx: Context, flow: LoginFlow, loadedUser?: UserWithCustomer): Promise<void> {
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    let accepted = false;
    if (flow.state.invitation && flow.user_id === flow.state.invitation.userId) {
      await acceptInvitation(services, flow.state.invitation.tokenId, flow.user_id, request);
      accepted = true;
    }
    // The user as a step of this request loaded it, unless accepting an invitation changed it since.
    const reuse = !accepted && loadedUser?.id === flow.user_id ? loadedUser : undefined;
    const user = reuse ?? (flow.user_id ? await findUserById(services.db, flow.user_id) : undefined);
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
    // First record the result in the interaction (oidc-provider), then the audit event and the end of
    // the flow in one statement, then redirect. Should the database fail in between, repeating the
    // request repeats only what did not happen: no sign-in is lost and none is recorded twice.
    const resumeUrl = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    await endFlow(services.db, flow.id, {
      type: 'login.succeeded',
      userId: user.id,
      customerId: user.customer_id,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { amr: result.login.amr, client_id: ctx.state.clientId, trusted_device_id: flow.state.trustedDeviceId },
    });
    services.metrics.signIns.inc({ outcome: 'success', method: result.login.amr.join('+') });
    ctx.status = 303;
    ctx.redirect(resumeUrl);
  }

  router.get('/interaction/:uid', async (ctx) => {
    const { details, input } = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name === 'consent') return showConsent(services, provider, ctx, details);
    if (details.prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${details.prompt.name}`);
    if (await takeInvitation(ctx, services, input.flow)) await saveFlow(services.db, input.flow);
    const next = nextStep(input.flow);
    if ('done' in next) return finishLogin(ctx, input.flow);
    await STEPS[next.step].show(input);
  });

  // Registered before the generic step route, which would otherwise take POST …/google.
  if (services.config.google) {
    const upstream = new GoogleUpstream(services.config.google, services.config.issuer, services.secrets);
    registerGoogleRoutes(router, { services, upstream, begin, proceed });
  }

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
    const passed = await STEPS[next.step].submit(input).catch((error: unknown) => {
      services.metrics.signInSteps.inc({ method: next.step, outcome: 'error' });
      throw error;
    });
    services.metrics.signInSteps.inc({ method: next.step, outcome: passed ? 'success' : stepOutcome(ctx.status) });
    if (!passed) return;
    const expected = expectedSubject(details);
    if (expected && input.flow.user_id && input.flow.user_id !== expected) {
      // The app named the account (id_token_hint, or claims sub value): another one cannot finish this
      // sign-in; oidc-provider would only ask for the login again (OpenID Connect Core 3.1.2.1).
      await audit(services.db, {
        type: 'login.failed',
        userId: input.flow.user_id,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
        details: { method: 'pwd', reason: 'not_the_requested_account', client_id: details.params.client_id },
      });
      input.flow.user_id = null;
      input.flow.state = { amr: [] };
      await saveFlow(services.db, input.flow);
      await passwordStep.show(input, { status: 403, message: translator(pageLocale(ctx))('signin.error.other_account') });
      return;
    }
    await proceed(ctx, details, input.flow, input.user);
  });

  router.get('/interaction/:uid/abort', async (ctx) => {
    const { details, input } = await begin(ctx);
    await deleteFlow(services.db, details.uid);
    services.metrics.signIns.inc({ outcome: 'aborted', method: input.flow.state.amr.join('+') || 'none' });
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
