// "Sign in with Google" in the sign-in flow (DESIGN §2). Three routes:
//   POST /interaction/:uid/google           the button on the password page (CSRF-checked): starts an
//                                           upstream attempt bound to this interaction, 303 to Google;
//   GET  /interaction/callback/google       the one redirect URI registered at Google: the interaction
//                                           cookie is path-scoped to /interaction/<uid>, so this only
//                                           forwards (303) to the interaction's own callback below;
//   GET  /interaction/:uid/google/callback  checks the state against the flow (once), redeems the code,
//                                           validates the ID token, finds the linked user, and hands
//                                           the identified flow back to the policy (TOTP if enrolled).
// Every failure is a page that says what happened and links back to the password sign-in.
import type Router from '@koa/router';
import type { Context } from 'koa';
import { resolveGoogleIdentity, type GoogleRefusal } from '../accounts/google.js';
import { pageLocale, render } from '../http/render.js';
import { translator, type MessageKey } from '../i18n/index.js';
import { audit } from '../security/audit.js';
import { safeEqual } from '../security/crypto.js';
import { Throttled } from '../security/rate-limit.js';
import type { Services } from '../services.js';
import { saveFlow, type LoginFlow } from './flow.js';
import { GOOGLE_CALLBACK_PATH, GoogleUpstream, interactionOfState, toUpstreamError, type UpstreamFailure } from './google-upstream.js';
import { nextStep } from './policy.js';
import type { StepInput } from './step.js';

/** An attempt older than this is refused at the callback (the interaction itself lives an hour). */
const ATTEMPT_MAX_AGE_MS = 15 * 60 * 1000;

interface Details {
  uid: string;
  prompt: { name: string };
  params: Record<string, unknown>;
}

export interface GoogleRouteDeps {
  services: Services;
  upstream: GoogleUpstream;
  /** Loads the interaction (via its cookie) and the sign-in flow; throws SessionNotFound without them. */
  begin(ctx: Context): Promise<{ details: Details; input: StepInput }>;
  /** After identification: looks up the second factors, saves the flow, finishes or shows the next step. */
  proceed(ctx: Context, details: Details, flow: LoginFlow): Promise<void>;
}

type Failure = UpstreamFailure | 'request' | 'no_account' | 'unverified';

const FAILURE_PAGE: Record<Failure, { status: number; message: MessageKey }> = {
  unavailable: { status: 503, message: 'google.error.unavailable' },
  cancelled: { status: 401, message: 'google.error.cancelled' },
  rejected: { status: 502, message: 'google.error.rejected' },
  invalid: { status: 502, message: 'google.error.invalid' },
  request: { status: 400, message: 'google.error.request' },
  no_account: { status: 403, message: 'google.error.no_account' },
  unverified: { status: 403, message: 'google.error.unverified' },
};

const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });

export function registerGoogleRoutes(router: Router, deps: GoogleRouteDeps): void {
  const { services, upstream, begin, proceed } = deps;
  const { db, log } = services;
  const limiter = services.limits.googleCallbackPerIp;

  async function failurePage(ctx: Context, failure: Failure, uid: string | undefined): Promise<void> {
    const page = FAILURE_PAGE[failure];
    if (failure === 'unavailable') ctx.set('Retry-After', '30');
    await render(
      ctx,
      'google-error',
      { message: translator(pageLocale(ctx))(page.message), backUrl: uid ? `/interaction/${uid}` : undefined },
      page.status,
    );
  }

  async function refuse(ctx: Context, failure: Failure, uid: string | undefined, details: Record<string, unknown>, userId?: string): Promise<void> {
    await audit(db, { type: 'login.failed', userId, ...request(ctx), details: { method: 'fed', ...details } });
    await failurePage(ctx, failure, uid);
  }

  /** Counts a refused callback against the client IP; answers 429 once the IP has used up its attempts. */
  async function countFailure(ctx: Context): Promise<void> {
    try {
      await limiter.consume(ctx.ip);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
    }
  }

  router.post('/interaction/:uid/google', async (ctx) => {
    const { details, input } = await begin(ctx);
    ctx.state.clientId = details.params.client_id;
    if (details.prompt.name !== 'login') ctx.throw(404);
    const next = nextStep(input.flow);
    // Google identifies, so it is offered only while nobody is identified (the password page).
    if ('done' in next || next.step !== 'password') {
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    let attempt: { url: string; stateHash: string };
    try {
      attempt = await upstream.start(details.uid);
    } catch (error) {
      const failure = toUpstreamError(error);
      log.warn({ err: failure.cause ?? failure, kind: failure.kind }, 'Google sign-in could not start');
      return refuse(ctx, failure.kind, details.uid, { reason: `upstream_${failure.kind}`, stage: 'start' });
    }
    input.flow.state.google = { stateHash: attempt.stateHash, startedAt: Date.now() };
    await saveFlow(db, input.flow);
    ctx.status = 303;
    ctx.redirect(attempt.url);
  });

  router.get(GOOGLE_CALLBACK_PATH, async (ctx) => {
    const uid = interactionOfState(ctx.query.state);
    if (!uid) {
      await countFailure(ctx);
      await refuse(ctx, 'request', undefined, { reason: 'state_malformed' });
      return;
    }
    ctx.status = 303;
    ctx.redirect(`/interaction/${uid}/google/callback?${ctx.querystring}`);
  });

  router.get('/interaction/:uid/google/callback', async (ctx) => {
    try {
      await limiter.check(ctx.ip);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      await audit(db, { type: 'login.throttled', ...request(ctx), details: { method: 'fed' } });
      throw error; // the error page says how long to wait (429, Retry-After)
    }
    const { details, input } = await begin(ctx);
    const { flow } = input;
    ctx.state.clientId = details.params.client_id;
    const params = new URLSearchParams(ctx.querystring);
    const state = params.get('state') ?? '';
    const pending = flow.state.google;

    if (details.prompt.name !== 'login' || !pending || !safeEqual(upstream.stateHash(state), pending.stateHash)) {
      // Not the attempt this flow is waiting for: a replayed or forged callback, or an old tab.
      await countFailure(ctx);
      return refuse(ctx, 'request', details.uid, { reason: pending ? 'state_mismatch' : 'no_attempt_pending' });
    }
    // From here the attempt is used up: the same callback a second time finds nothing pending.
    delete flow.state.google;
    await saveFlow(db, flow);
    if (Date.now() - pending.startedAt > ATTEMPT_MAX_AGE_MS) return refuse(ctx, 'request', details.uid, { reason: 'attempt_expired' });
    const next = nextStep(flow);
    if ('done' in next || next.step !== 'password') {
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    if (!params.get('code') && !params.get('error')) {
      await countFailure(ctx);
      return refuse(ctx, 'request', details.uid, { reason: 'code_missing' });
    }

    let identity;
    try {
      identity = await upstream.finish(params, state);
    } catch (error) {
      const failure = toUpstreamError(error);
      if (failure.kind === 'invalid') await countFailure(ctx);
      if (failure.kind !== 'cancelled') log.warn({ err: failure.cause ?? failure, kind: failure.kind }, 'Google sign-in failed');
      return refuse(ctx, failure.kind, details.uid, { reason: `upstream_${failure.kind}`, detail: failure.message.slice(0, 200) });
    }

    const match = await resolveGoogleIdentity(db, identity, request(ctx));
    if (!match.ok) {
      const shown: Failure = match.reason === 'email_unverified' ? 'unverified' : 'no_account';
      return refuse(ctx, shown, details.uid, { reason: match.reason satisfies GoogleRefusal, google_subject: identity.subject, google_email: identity.email ?? null }, match.userId);
    }
    flow.user_id = match.user.id;
    flow.state.amr = [...new Set([...flow.state.amr, 'fed'])];
    await proceed(ctx, details, flow);
  });
}
