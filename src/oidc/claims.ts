// The claims a user's tokens and userinfo carry. oidc-provider filters them by the granted scopes
// (see the `claims` map in provider.ts). `sub` is the user id: stable, never the email.
import type { UserWithCustomer } from '../accounts/users.js';

export function accountClaims(user: UserWithCustomer): { sub: string; [claim: string]: unknown } {
  return {
    sub: user.id,
    email: user.email,
    email_verified: user.email_verified,
    name: user.name,
    // Only a language the user chose (null = unknown: the claim is left out).
    locale: user.locale ?? undefined,
    updated_at: Math.floor(user.updated_at.getTime() / 1000),
    customer_number: user.customer_number,
    role: user.role,
  };
}
