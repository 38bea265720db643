// Initial schema: customers and users, oidc-provider artefacts, clients, signing keys,
// sign-in flows, audit events and rate-limit counters.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('customers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('customer_number').notNullable().unique();
    t.text('name').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('users', (t) => {
    // The id is the OIDC subject: stable, never the email.
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.text('email').notNullable();
    t.text('name').notNullable();
    t.text('role').notNullable().defaultTo('user');
    t.boolean('is_owner').notNullable().defaultTo(false);
    t.text('status').notNullable().defaultTo('active');
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.text('locale').notNullable().defaultTo('en');
    t.text('password_hash');
    t.text('google_email');
    t.text('google_subject').unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['customer_id']);
  });
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'user'))`);
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_status_check CHECK (status IN ('active', 'invited', 'disabled'))`);
  await knex.raw('CREATE UNIQUE INDEX users_email_unique ON users (lower(email))');
  await knex.raw('CREATE UNIQUE INDEX users_one_owner_per_customer ON users (customer_id) WHERE is_owner');

  // Every oidc-provider model (Session, Grant, AuthorizationCode, RefreshToken, …) in one table.
  await knex.schema.createTable('oidc_payloads', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('user_code');
    t.text('uid');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['uid']);
    t.index(['user_code']);
    t.index(['expires_at']);
  });

  // Registered clients (CLI, admin pages, dynamic registration). The secret is encrypted at rest.
  await knex.schema.createTable('oidc_clients', (t) => {
    t.text('client_id').primary();
    t.jsonb('metadata').notNullable();
    t.text('secret_encrypted');
    t.boolean('first_party').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.text('private_jwk_encrypted').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
  });

  // One record per sign-in attempt (keyed by the oidc-provider interaction uid), so a half-finished
  // sign-in can continue on another instance and is auditable.
  await knex.schema.createTable('login_flows', (t) => {
    t.text('id').primary();
    t.uuid('user_id').references('users.id').onDelete('CASCADE');
    t.jsonb('state').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('type').notNullable();
    t.uuid('user_id');
    t.uuid('customer_id');
    t.text('ip');
    t.text('user_agent');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.index(['user_id', 'at']);
    t.index(['type', 'at']);
  });

  // Table layout expected by rate-limiter-flexible's RateLimiterPostgres.
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable().defaultTo(0);
    t.bigInteger('expire');
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['rate_limits', 'audit_events', 'login_flows', 'signing_keys', 'oidc_clients', 'oidc_payloads', 'users', 'customers']) {
    await knex.schema.dropTableIfExists(table);
  }
}
