// The one place that decides the next sign-in step (DESIGN §2):
//   1. identify + password;
//   2. a second factor: the authenticator app (TOTP) when the user has one, on every sign-in;
//      otherwise the email code, unless this browser is trusted by this user;
//   3. after a correct email code, the question whether to trust this browser.
// Later factors (TOTP, Google) plug in here as rules; the routes only ask "what next?".
import type { LoginFlow } from './flow.js';

export type StepName = 'password' | 'totp' | 'email_code' | 'trust';
export type Next = { step: StepName } | { done: true };

export function nextStep(flow: LoginFlow): Next {
  const { amr } = flow.state;
  if (!flow.user_id || !amr.includes('pwd')) return { step: 'password' };
  if (flow.state.totpDevice !== undefined) return amr.includes('otp') ? { done: true } : { step: 'totp' };
  if (flow.state.trustedDeviceId) return { done: true };
  if (!amr.includes('mca')) return { step: 'email_code' };
  if (!flow.state.trustAnswered) return { step: 'trust' };
  return { done: true };
}
