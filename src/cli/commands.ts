// The operator commands (DESIGN §5). The same code runs in the `idp` process or, while a server holds
// the embedded database, inside that server (see control-socket.ts).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createCustomer } from '../accounts/customers.js';
import { setGoogleEmail, unlinkGoogle } from '../accounts/google.js';
import type { PasswordHasher } from '../accounts/passwords.js';
import { disableTotp } from '../accounts/two-factor.js';
import { createUser, findUserByEmail, type Role } from '../accounts/users.js';
import { migrateLatest, type Db } from '../db/index.js';
import { DomainError } from '../errors.js';
import { createClient, deleteClient, listClients } from '../oidc/clients.js';
import { audit } from '../security/audit.js';
import type { Logger } from '../log.js';
import type { Mailer } from '../mail/mailer.js';
import type { Secrets } from '../security/crypto.js';

export interface CommandContext {
  db: Db;
  secrets: Secrets;
  hasher: PasswordHasher;
  mailer: Mailer;
  log: Logger;
  /** Standard input, read by the caller when a command needs it (--password-stdin). */
  stdin?: string | undefined;
}

export interface CommandResult {
  exitCode: number;
  /** Printed as one JSON object on stdout when the command succeeded. */
  output?: Record<string, unknown>;
  /** Printed on stderr. */
  error?: string;
  /** Printed on stderr after a successful command. */
  notice?: string;
}

export class UsageError extends Error {}

export const USAGE = `Usage: idp <command> [options]

Commands:
  migrate
  customer create --name NAME [--customer-number N]
  user create --customer N --email E --name NAME [--role admin|user] [--owner]
              [--google-email G] [--password-stdin] [--no-invite]
  user disable-2fa --email E
  user set-google-email --email E --google-email G
  user unlink-google --email E
  client create --name NAME --redirect-uri URI [--redirect-uri URI...]
                [--post-logout-redirect-uri URI...] [--first-party] [--public]
                [--grant refresh_token|client_credentials ...]
  client list
  client delete --client-id ID

Each command prints one JSON object on stdout, or an error on stderr with a non-zero exit code.`;

type Options = NonNullable<ParseArgsConfig['options']>;
type Handler = (ctx: CommandContext, values: Record<string, string | boolean | (string | boolean)[] | undefined>) => Promise<CommandResult>;

interface Command {
  options: Options;
  run: Handler;
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || !value.trim()) throw new UsageError(`--${name} is required`);
  return value;
}

const COMMANDS: Record<string, Command> = {
  migrate: {
    options: {},
    run: async ({ db }) => ({ exitCode: 0, output: { applied: await migrateLatest(db) } }),
  },

  'customer create': {
    options: { name: { type: 'string' }, 'customer-number': { type: 'string' } },
    run: async ({ db }, v) => {
      const customer = await createCustomer(db, { name: required(v, 'name'), customerNumber: v['customer-number'] as string | undefined });
      await audit(db, { type: 'customer.created', customerId: customer.id, details: { via: 'cli', customer_number: customer.customer_number } });
      return { exitCode: 0, output: { id: customer.id, customer_number: customer.customer_number, name: customer.name } };
    },
  },

  'user create': {
    options: {
      customer: { type: 'string' },
      email: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      owner: { type: 'boolean' },
      'google-email': { type: 'string' },
      'password-stdin': { type: 'boolean' },
      'no-invite': { type: 'boolean' },
    },
    run: async ({ db, hasher, stdin }, v) => {
      let password: string | undefined;
      if (v['password-stdin']) {
        password = (stdin ?? '').replace(/\r?\n$/, '');
        if (!password) throw new UsageError('--password-stdin was given but standard input is empty');
      }
      const role = (v.role as string | undefined) ?? (v.owner ? 'admin' : 'user');
      const { user, customer } = await db.transaction(async (trx) => {
        const created = await createUser(trx, hasher, {
          customerNumber: required(v, 'customer'),
          email: required(v, 'email'),
          name: required(v, 'name'),
          role: role as Role,
          owner: Boolean(v.owner),
          googleEmail: v['google-email'] as string | undefined,
          password,
        });
        await audit(trx, {
          type: 'user.created',
          userId: created.user.id,
          customerId: created.customer.id,
          details: { via: 'cli', role: created.user.role, owner: created.user.is_owner },
        });
        return created;
      });
      const wantsInvite = !v['no-invite'];
      return {
        exitCode: 0,
        output: {
          user_id: user.id,
          email: user.email,
          name: user.name,
          customer_number: customer.customer_number,
          role: user.role,
          owner: user.is_owner,
          status: user.status,
          google_email: user.google_email,
          invitation_sent: false,
        },
        ...(wantsInvite
          ? { notice: 'Invitation emails are not available yet: set a password with --password-stdin, or invite the user once invitations are enabled.' }
          : {}),
      };
    },
  },

  'user disable-2fa': {
    options: { email: { type: 'string' } },
    run: async (ctx, v) => {
      const email = required(v, 'email');
      const user = await findUserByEmail(ctx.db, email);
      if (!user) throw new DomainError('unknown_user', `No user with email ${email}.`, 404);
      const removed = await disableTotp(ctx, user, { kind: 'operator' }, { userAgent: 'idp-cli' });
      if (!removed) throw new DomainError('totp_not_active', `${user.email} has no authenticator app set up.`, 409);
      return { exitCode: 0, output: { user_id: user.id, email: user.email, two_factor: 'email_code' } };
    },
  },

  'user set-google-email': {
    options: { email: { type: 'string' }, 'google-email': { type: 'string' } },
    run: async ({ db }, v) => {
      const user = await setGoogleEmail(db, required(v, 'email'), required(v, 'google-email'), { kind: 'operator' }, { userAgent: 'idp-cli' });
      return { exitCode: 0, output: { user_id: user.id, email: user.email, google_email: user.google_email, google_linked: false } };
    },
  },

  'user unlink-google': {
    options: { email: { type: 'string' } },
    run: async ({ db }, v) => {
      const user = await unlinkGoogle(db, required(v, 'email'), { kind: 'operator' }, { userAgent: 'idp-cli' });
      return { exitCode: 0, output: { user_id: user.id, email: user.email, google_email: null, google_linked: false } };
    },
  },

  'client create': {
    options: {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'first-party': { type: 'boolean' },
      public: { type: 'boolean' },
      grant: { type: 'string', multiple: true },
    },
    run: async ({ db, secrets }, v) => {
      const created = await createClient(db, secrets, {
        name: required(v, 'name'),
        redirectUris: (v['redirect-uri'] as string[] | undefined) ?? [],
        postLogoutRedirectUris: (v['post-logout-redirect-uri'] as string[] | undefined) ?? [],
        firstParty: Boolean(v['first-party']),
        public: Boolean(v.public),
        grants: (v.grant as string[] | undefined) ?? [],
      });
      await audit(db, { type: 'client.registered', details: { via: 'cli', client_id: created.client_id } });
      return { exitCode: 0, output: created };
    },
  },

  'client list': {
    options: {},
    run: async ({ db }) => ({ exitCode: 0, output: { clients: await listClients(db) } }),
  },

  'client delete': {
    options: { 'client-id': { type: 'string' } },
    run: async ({ db }, v) => {
      const clientId = required(v, 'client-id');
      await deleteClient(db, clientId);
      await audit(db, { type: 'client.deleted', details: { via: 'cli', client_id: clientId } });
      return { exitCode: 0, output: { deleted: clientId } };
    },
  },
};

/** Splits argv into the command name (one or two words) and its options. */
export function resolveCommand(argv: string[]): { name: string; command: Command; rest: string[] } {
  const two = argv.slice(0, 2).join(' ');
  if (COMMANDS[two]) return { name: two, command: COMMANDS[two]!, rest: argv.slice(2) };
  const one = argv[0] ?? '';
  if (COMMANDS[one]) return { name: one, command: COMMANDS[one]!, rest: argv.slice(1) };
  throw new UsageError(argv.length ? `unknown command: ${argv.slice(0, 2).join(' ')}` : 'no command given');
}

/** Does the command need standard input? (The CLI reads it before handing the command to a server.) */
export function needsStdin(argv: string[]): boolean {
  return argv.includes('--password-stdin');
}

export async function runCommand(ctx: CommandContext, argv: string[]): Promise<CommandResult> {
  try {
    const { command, rest } = resolveCommand(argv);
    const { values, positionals } = parseArgs({ args: rest, options: command.options, strict: true, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    return await command.run(ctx, values);
  } catch (error) {
    if (error instanceof UsageError) return { exitCode: 2, error: `${error.message}\n\n${USAGE}` };
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return { exitCode: 2, error: `${(error as Error).message}\n\n${USAGE}` };
    if (error instanceof DomainError) return { exitCode: 1, error: error.message };
    throw error;
  }
}
