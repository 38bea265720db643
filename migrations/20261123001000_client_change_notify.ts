// Every change to a registered client is announced (NOTIFY oidc_clients_changed, payload the client_id,
// '*' for TRUNCATE), so each instance's in-memory client cache drops it at once (src/oidc/client-cache.ts).
// A trigger catches every writer: the app, the CLI, another instance, psql.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION oidc_clients_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('oidc_clients_changed', COALESCE(NEW.client_id, OLD.client_id));
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE FUNCTION oidc_clients_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('oidc_clients_changed', '*');
      RETURN NULL;
    END $$`);
  await knex.raw('CREATE TRIGGER oidc_clients_changed AFTER INSERT OR UPDATE OR DELETE ON oidc_clients FOR EACH ROW EXECUTE FUNCTION oidc_clients_notify_row()');
  await knex.raw('CREATE TRIGGER oidc_clients_truncated AFTER TRUNCATE ON oidc_clients FOR EACH STATEMENT EXECUTE FUNCTION oidc_clients_notify_all()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS oidc_clients_truncated ON oidc_clients');
  await knex.raw('DROP TRIGGER IF EXISTS oidc_clients_changed ON oidc_clients');
  await knex.raw('DROP FUNCTION IF EXISTS oidc_clients_notify_all()');
  await knex.raw('DROP FUNCTION IF EXISTS oidc_clients_notify_row()');
}
