// Temporary 2FA bypass: an authenticator can be suspended until a time (support's "temporary disable"),
// and a replacement can be set up while the old credential still exists.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('totp_credentials', (t) => {
    t.timestamp('suspended_until', { useTz: true });
    t.text('pending_secret_encrypted');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('totp_credentials', (t) => {
    t.dropColumn('suspended_until');
    t.dropColumn('pending_secret_encrypted');
  });
}
