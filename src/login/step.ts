// The shape of a sign-in step, after Keycloak's authenticators: show the page, check a submission and
// say what changed. Steps never finish the interaction themselves; the policy decides what comes next.
import type { Context } from 'koa';
import type { UserWithCustomer } from '../accounts/users.js';
import type { Services } from '../services.js';
import type { LoginFlow } from './flow.js';

export interface StepInput {
  ctx: Context;
  services: Services;
  flow: LoginFlow;
  /** The oidc-provider interaction (uid, params such as login_hint, client). */
  interaction: { uid: string; params: Record<string, unknown> };
  /** The client's name, for pages that show it (looked up only when a page asks). */
  clientName(): Promise<string | undefined>;
  /** The flow's user as a step of this request loaded it (spares the next one the lookup). */
  user?: UserWithCustomer | undefined;
}

export interface LoginStep {
  /** Renders the step's page (status 200, or the given error status with a message). */
  show(input: StepInput, error?: { status: number; message: string; values?: Record<string, string> }): Promise<void>;
  /**
   * Checks a submission. Returns true when the step passed (the flow was updated and must be saved);
   * false when it rendered an error page itself.
   */
  submit(input: StepInput): Promise<boolean>;
}
