// Authenticator-app (TOTP) credentials and single-use recovery codes.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('totp_credentials', (t) => {
    t.uuid('user_id').primary().references('users.id').onDelete('CASCADE');
    // Encrypted with DATA_ENCRYPTION_KEY; shown to the user only during set-up.
    t.text('secret_encrypted').notNullable();
    t.text('status').notNullable(); // 'pending' during set-up, then 'active'
    t.text('device_name');
    // The last accepted time step: a code is accepted once (replay of a used step is refused).
    t.bigInteger('last_used_step');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('activated_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE totp_credentials ADD CONSTRAINT totp_status_check CHECK (status IN ('pending', 'active'))`);

  await knex.schema.createTable('recovery_codes', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('used_at', { useTz: true });
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('recovery_codes');
  await knex.schema.dropTableIfExists('totp_credentials');
}
