// Account console: device credentials (SIP passwords of phones and softphones) and pending email changes.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('device_credentials', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('label').notNullable();
    t.text('username').notNullable().unique();
    // Keyed HMAC-SHA256 of a 120-bit random secret (see device-credentials.ts for why not argon2).
    t.text('secret_hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('renewed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_verified_at', { useTz: true });
    t.index(['user_id']);
  });

  await knex.schema.createTable('email_changes', (t) => {
    t.uuid('user_id').primary().references('users.id').onDelete('CASCADE');
    t.text('new_email').notNullable();
    t.text('code_hash').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('email_changes');
  await knex.schema.dropTableIfExists('device_credentials');
}
