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
  clientName: string | undefined;
  /** What the client registered to be shown to people (logo, privacy policy, terms of service). */
  clientLinks: ClientLinks;
  /** The flow's user as a step of this request loaded it (spares finishing the sign-in the lookup). */
  user?: UserWithCustomer | undefined;
}

export interface ClientLinks {
  logoUri?: string | undefined;
  policyUri?: string | undefined;
  tosUri?: string | undefined;
}

/** An error to show on a step's page; `field`: the id of the field(s) it is about (marked invalid, focused). */
export interface StepError {
  status: number;
  message: string;
  values?: Record<string, string>;
  field?: string | string[];
}

export interface LoginStep {
  /** Renders the step's page (status 200, or the given error status with a message). */
  show(input: StepInput, error?: StepError): Promise<void>;
  /**
   * Checks a submission. Returns true when the step passed (the flow was updated and must be saved);
   * false when it rendered an error page itself.
   */
  submit(input: StepInput): Promise<boolean>;
}
