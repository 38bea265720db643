// Clients and tokens (issue 7): signing-key life cycle, remembered consents, resource servers, and
// how each client was registered.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Key life cycle, computed by every instance from these timestamps (see src/oidc/keys.ts):
  // published from created_at, signs from activates_at, stops signing at retired_at, unpublished at expires_at.
  await knex.schema.alterTable('signing_keys', (t) => {
    t.timestamp('activates_at', { useTz: true });
    t.timestamp('expires_at', { useTz: true });
  });
  await knex.raw('UPDATE signing_keys SET activates_at = created_at');
  await knex.raw("UPDATE signing_keys SET expires_at = retired_at + interval '25 hours' WHERE retired_at IS NOT NULL");
  await knex.raw('ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL');
  await knex.raw('ALTER TABLE signing_keys ALTER COLUMN activates_at SET DEFAULT now()');

  await knex.schema.alterTable('oidc_clients', (t) => {
    // cli, ops (operator page) or dcr (dynamic client registration).
    t.text('registered_via').notNullable().defaultTo('cli');
    // Resource-server scopes a machine client may obtain with client_credentials (set by an operator only:
    // kept out of the client metadata, which dynamic registration lets a client write).
    t.jsonb('api_scopes').notNullable().defaultTo('[]');
  });

  // What a user allowed a (not first-party) client, remembered across sessions until revoked.
  await knex.schema.createTable('consents', (t) => {
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('client_id').notNullable().references('oidc_clients.client_id').onDelete('CASCADE');
    t.jsonb('scopes').notNullable().defaultTo('[]');
    t.jsonb('claims').notNullable().defaultTo('[]');
    /** { "<resource indicator>": ["scope", …] } */
    t.jsonb('resource_scopes').notNullable().defaultTo('{}');
    t.timestamp('granted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'client_id']);
    t.index(['client_id']);
  });

  // APIs that accept JWT access tokens (RFC 9068), addressed with resource indicators (RFC 8707).
  await knex.schema.createTable('resource_servers', (t) => {
    t.text('identifier').primary();
    t.text('name').notNullable();
    t.jsonb('scopes').notNullable().defaultTo('[]');
    t.integer('access_token_ttl').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('resource_servers');
  await knex.schema.dropTableIfExists('consents');
  await knex.schema.alterTable('oidc_clients', (t) => {
    t.dropColumn('registered_via');
    t.dropColumn('api_scopes');
  });
  await knex.schema.alterTable('signing_keys', (t) => {
    t.dropColumn('activates_at');
    t.dropColumn('expires_at');
  });
}
