// The one place that decides the next sign-in step (DESIGN §2):
//   1. identify: password (amr pwd), or "Sign in with Google" (amr fed), which starts on the
//      password page and comes back through the Google callback;
//   2. a second factor: the authenticator app (TOTP) when the user has one, on every sign-in, also
//      after Google; otherwise, after a password only, the email code, unless this browser is trusted
//      by this user. After Google there is no email code (and so no trust question);
//   3. after a correct email code, the question whether to trust this browser.
// An invitation link leads through its own first sign-in (below). The routes only ask "what next?".
import type { LoginFlow } from './flow.js';

export type StepName = 'password' | 'totp' | 'email_code' | 'trust' | 'invite_email' | 'create_password' | 'totp_renew';
export type Next = { step: StepName } | { done: true };

/** The user was identified by a password or by Google. */
export function isIdentified(flow: LoginFlow): boolean {
  const { amr } = flow.state;
  return Boolean(flow.user_id) && (amr.includes('pwd') || amr.includes('fed'));
}

/**
 * The steps this sign-in goes through, as far as they are known: what the person has done and what the
 * policy will still ask, for "Step 2 of 3" on the pages. Before anyone is identified the path is unknown.
 */
export function plannedSteps(flow: LoginFlow): (StepName | 'google')[] | undefined {
  const { amr } = flow.state;
  if (flow.state.invitation) return ['invite_email', 'create_password', 'email_code', 'trust'];
  if (!isIdentified(flow)) return undefined;
  const first = amr.includes('fed') ? 'google' : 'password';
  if (flow.state.totpBypassUntil) return amr.includes('fed') ? [first, 'totp_renew'] : [first, 'email_code', 'totp_renew'];
  if (flow.state.totpDevice !== undefined) return [first, 'totp'];
  if (amr.includes('fed') || flow.state.trustedDeviceId) return [first];
  return [first, 'email_code', 'trust'];
}

/** "Step N of M" for the page of `step`, or undefined when the path is not known yet. */
export function stepProgress(flow: LoginFlow, step: StepName): { step: number; total: number } | undefined {
  const steps = plannedSteps(flow);
  const index = steps?.indexOf(step) ?? -1;
  return steps && index >= 0 ? { step: index + 1, total: steps.length } : undefined;
}

export function nextStep(flow: LoginFlow): Next {
  const { amr } = flow.state;
  // First sign-in of an invited user: email → "Create password" → email code → trust question.
  if (flow.state.invitation) {
    if (!flow.user_id) return { step: 'invite_email' };
    if (!amr.includes('pwd')) return { step: 'create_password' };
    if (!amr.includes('mca')) return { step: 'email_code' };
    if (!flow.state.trustAnswered) return { step: 'trust' };
    return { done: true };
  }
  if (!isIdentified(flow)) return { step: 'password' };
  // Support's temporary bypass: the email code stands in for the suspended app (no trust skip, no trust
  // question), then the user is asked to set the app up again.
  if (flow.state.totpBypassUntil) {
    if (!amr.includes('fed') && !amr.includes('mca')) return { step: 'email_code' };
    if (!flow.state.totpRenewAnswered) return { step: 'totp_renew' };
    return { done: true };
  }
  if (flow.state.totpDevice !== undefined) return amr.includes('otp') ? { done: true } : { step: 'totp' };
  if (amr.includes('fed')) return { done: true };
  if (flow.state.trustedDeviceId) return { done: true };
  if (!amr.includes('mca')) return { step: 'email_code' };
  if (!flow.state.trustAnswered) return { step: 'trust' };
  return { done: true };
}
