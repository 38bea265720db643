// Sign in with Google: a Google address identifies at most one user, so the first sign-in with it can
// never be ambiguous. (google_subject is unique since the initial migration.)
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE UNIQUE INDEX users_google_email_unique ON users (lower(google_email)) WHERE google_email IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS users_google_email_unique');
}
