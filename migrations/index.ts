// The ordered list of migrations. Listing them here (instead of letting knex scan the folder) makes
// the same code load them under tsx, in the Docker image and in tests.
import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';
import * as emailCodes from './20261123000100_email_codes_trusted_devices.js';
import * as clientsTokens from './20261123000200_clients_tokens.js';
import * as totp from './20261123000300_totp.js';
import * as google from './20261123000400_google.js';
import * as userTokens from './20261123000500_user_tokens.js';
import * as consoleTables from './20261123000700_console.js';
import * as totpBypass from './20261123000800_totp_bypass.js';
import * as locale from './20261123000900_locale.js';
import * as clientChangeNotify from './20261123001000_client_change_notify.js';

export const migrations: Record<string, Knex.Migration> = {
  '20261123000000_initial': initial,
  '20261123000100_email_codes_trusted_devices': emailCodes,
  '20261123000200_clients_tokens': clientsTokens,
  '20261123000300_totp': totp,
  '20261123000400_google': google,
  '20261123000500_user_tokens': userTokens,
  '20261123000700_console': consoleTables,
  '20261123000800_totp_bypass': totpBypass,
  '20261123000900_locale': locale,
  '20261123001000_client_change_notify': clientChangeNotify,
};
