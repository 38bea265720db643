// Test data made through the same domain modules the CLI uses.
import { createCustomer } from '../../src/accounts/customers.js';
import { createUser, type Role } from '../../src/accounts/users.js';
import { createClient, type CreateClientInput } from '../../src/oidc/clients.js';
import { testEnv } from './env.js';

export const PASSWORD = 'correct horse battery staple';
let counter = 0;

export async function makeUser(options: { email?: string; password?: string | null; role?: Role; owner?: boolean; customerNumber?: string } = {}) {
  const { services } = testEnv().server.app;
  counter += 1;
  const customer = await createCustomer(services.db, { name: `Customer ${counter}`, customerNumber: options.customerNumber });
  const { user } = await createUser(services.db, services.hasher, {
    customerNumber: customer.customer_number,
    email: options.email ?? `user${counter}@example.com`,
    name: `User ${counter}`,
    role: options.role ?? (options.owner ? 'admin' : 'user'),
    owner: options.owner ?? false,
    password: options.password === null ? undefined : (options.password ?? PASSWORD),
  });
  return { user, customer, password: options.password ?? PASSWORD };
}

export const REDIRECT_URI = 'http://127.0.0.1:9/cb';

/** A client for tests; first-party (no consent page) unless `firstParty: false` is given. */
export async function makeClient(overrides: Partial<CreateClientInput> = {}) {
  const { services } = testEnv().server.app;
  return createClient(services.db, services.secrets, {
    name: 'Test App',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: ['http://127.0.0.1:9/logged-out'],
    grants: ['refresh_token'],
    firstParty: true,
    ...overrides,
  });
}
