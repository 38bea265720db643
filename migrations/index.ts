// The ordered list of migrations. Listing them here (instead of letting knex scan the folder) makes
// the same code load them under tsx, in the Docker image and in tests.
import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';
import * as clientsTokens from './20261123000200_clients_tokens.js';

export const migrations: Record<string, Knex.Migration> = {
  '20261123000000_initial': initial,
  '20261123000200_clients_tokens': clientsTokens,
};
