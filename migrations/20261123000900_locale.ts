// A user's language is null until the user chooses one on the profile page: then pages follow the app's
// ui_locales and the browser's Accept-Language. The old default 'en' was never a choice, so it becomes
// null; a German choice stays.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.text('locale').nullable().defaultTo(null).alter();
  });
  await knex('users').where({ locale: 'en' }).update({ locale: null });
}

export async function down(knex: Knex): Promise<void> {
  await knex('users').whereNull('locale').update({ locale: 'en' });
  await knex.schema.alterTable('users', (t) => {
    t.text('locale').notNullable().defaultTo('en').alter();
  });
}
