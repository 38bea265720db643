// The one place that decides the next sign-in step (DESIGN §2). Each later factor (email code, TOTP,
// trust this device) plugs in here as a rule; the routes only ask "what next?".
import type { LoginFlow } from './flow.js';

export type StepName = 'password';
export type Next = { step: StepName } | { done: true };

export function nextStep(flow: LoginFlow): Next {
  if (!flow.user_id || !flow.state.amr.includes('pwd')) return { step: 'password' };
  return { done: true };
}
