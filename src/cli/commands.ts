// The operator commands (DESIGN §5). The same code runs in the `idp` process or, while a server holds
// the embedded database, inside that server (see control-socket.ts).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createCustomer } from '../accounts/customers.js';
import { setGoogleEmail, unlinkGoogle } from '../accounts/google.js';
import type { PasswordHasher } from '../accounts/passwords.js';
import { BYPASS_MAX_HOURS, disableTotp, suspendTotpTemporarily } from '../accounts/two-factor.js';
import { sendInvitation } from '../accounts/lifecycle.js';
import { createUser, findUserByEmail, findUserById, type Role } from '../accounts/users.js';
import { MailDeliveryError } from '../mail/mailer.js';
import { migrateLatest, type Db } from '../db/index.js';
import { parseDuration } from '../duration.js';
import { DomainError, englishError } from '../errors.js';
import { createClient, deleteClient, getClient, listClients, rotateClientSecret, updateClientUris } from '../oidc/clients.js';
import { listConsents, revokeConsent } from '../oidc/consents.js';
import { listSigningKeys, MAX_SIGNED_TOKEN_LIFETIME, rotateSigningKeys } from '../oidc/keys.js';
import { createInitialAccessToken } from '../oidc/registration.js';
import { createResourceServer, deleteResourceServer, listResourceServers } from '../oidc/resources.js';
import { audit } from '../security/audit.js';
import { translator, type MessageKey } from '../i18n/index.js';
import type { Config } from '../config.js';
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
  /** In production, redirect URIs follow the stricter rules (http on loopback only for public clients);
   * invitation links are absolute URLs under the issuer. */
  config: Pick<Config, 'production' | 'issuer'>;
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
  user invite --email E
  user disable-2fa --email E [--for 24h]   (--for: temporary, at most 7d; without: removed)
  user set-google-email --email E --google-email G
  user unlink-google --email E
  client create --name NAME --redirect-uri URI [--redirect-uri URI...]
                [--post-logout-redirect-uri URI...] [--first-party] [--public]
                [--grant refresh_token|client_credentials ...]
                [--auth-method client_secret_basic|client_secret_post|private_key_jwt]
                [--jwks JSON | --jwks-uri URI] [--backchannel-logout-uri URI]
                [--id-token-alg RS256|ES256]
  client create --machine --name NAME --scope "API SCOPES" [--auth-method ...]
  client list
  client show --client-id ID
  client update --client-id ID --redirect-uri URI... [--post-logout-redirect-uri URI...]
  client rotate-secret --client-id ID
  client delete --client-id ID
  client iat create [--expires-in 1d] [--reusable]
  resource create --uri URI --scope SCOPE [--scope SCOPE...] [--name NAME] [--ttl 1h]
  resource list
  resource delete --uri URI
  consent list --email E
  consent revoke --email E --client-id ID
  keys list
  keys rotate [--alg RS256|ES256 ...] [--activate-in 1h]

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

function optional(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function list(values: Record<string, unknown>, name: string): string[] {
  return (values[name] as string[] | undefined) ?? [];
}

async function userByEmail(db: Db, email: string) {
  const user = await findUserByEmail(db, email);
  if (!user) throw new DomainError('unknown_user', `No user with email ${email.trim().toLowerCase()}.`, 404);
  return user;
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
    run: async (ctx, v) => {
      const { db, hasher, stdin } = ctx;
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
      const output = {
        user_id: user.id,
        email: user.email,
        name: user.name,
        customer_number: customer.customer_number,
        role: user.role,
        owner: user.is_owner,
        status: user.status,
        google_email: user.google_email,
        invitation_sent: false,
      };
      // A user without a password gets an invitation to set one (unless --no-invite).
      if (v['no-invite'] || user.status !== 'invited') return { exitCode: 0, output };
      try {
        await sendInvitation(ctx, (await findUserById(db, user.id))!, { name: 'Support' }, { userAgent: 'idp-cli' });
      } catch (error) {
        if (!(error instanceof MailDeliveryError)) throw error;
        return {
          exitCode: 1,
          output,
          error: `The user was created, but the invitation email could not be sent. Retry with: idp user invite --email ${user.email}`,
        };
      }
      return { exitCode: 0, output: { ...output, invitation_sent: true } };
    },
  },

  'user invite': {
    options: { email: { type: 'string' } },
    run: async (ctx, v) => {
      const email = required(v, 'email');
      const user = await findUserByEmail(ctx.db, email);
      if (!user) throw new DomainError('unknown_user', `No user with email ${email}.`, 404);
      try {
        await sendInvitation(ctx, user, { name: 'Support' }, { userAgent: 'idp-cli' });
      } catch (error) {
        if (error instanceof MailDeliveryError) throw new DomainError('mail_failed', 'The invitation email could not be sent; check SMTP_URL and retry.', 503);
        throw error;
      }
      return { exitCode: 0, output: { user_id: user.id, email: user.email, invitation_sent: true } };
    },
  },

  'user disable-2fa': {
    options: { email: { type: 'string' }, for: { type: 'string' } },
    run: async (ctx, v) => {
      const email = required(v, 'email');
      const user = await findUserByEmail(ctx.db, email);
      if (!user) throw new DomainError('unknown_user', `No user with email ${email}.`, 404);
      if (v.for !== undefined) {
        // Temporary: the old app is required again after this time unless the user sets up a new one.
        const seconds = parseDuration(String(v.for), '--for', { min: 60, max: BYPASS_MAX_HOURS * 3600 });
        const until = await suspendTotpTemporarily(ctx, user, { kind: 'operator' }, seconds / 3600, { userAgent: 'idp-cli' });
        return { exitCode: 0, output: { user_id: user.id, email: user.email, two_factor: 'email_code', until: until.toISOString() } };
      }
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
      machine: { type: 'boolean' },
      grant: { type: 'string', multiple: true },
      'auth-method': { type: 'string' },
      jwks: { type: 'string' },
      'jwks-uri': { type: 'string' },
      'backchannel-logout-uri': { type: 'string' },
      'id-token-alg': { type: 'string' },
      scope: { type: 'string' },
    },
    run: async ({ db, secrets, config }, v) => {
      if (v.scope !== undefined && !v.machine) throw new UsageError('--scope is for machine clients (--machine)');
      if (v.machine && list(v, 'redirect-uri').length) throw new UsageError('a machine client (--machine) has no --redirect-uri');
      const created = await createClient(
        db,
        secrets,
        {
          name: required(v, 'name'),
          redirectUris: list(v, 'redirect-uri'),
          postLogoutRedirectUris: list(v, 'post-logout-redirect-uri'),
          firstParty: Boolean(v['first-party']),
          public: Boolean(v.public),
          machine: Boolean(v.machine),
          grants: list(v, 'grant'),
          authMethod: optional(v, 'auth-method'),
          jwks: optional(v, 'jwks'),
          jwksUri: optional(v, 'jwks-uri'),
          backchannelLogoutUri: optional(v, 'backchannel-logout-uri'),
          idTokenAlg: optional(v, 'id-token-alg'),
          scope: optional(v, 'scope'),
        },
        { production: config.production, via: 'cli' },
      );
      await audit(db, { type: 'client.registered', details: { via: 'cli', client_id: created.client_id } });
      return { exitCode: 0, output: created };
    },
  },

  'client list': {
    options: {},
    run: async ({ db }) => ({ exitCode: 0, output: { clients: await listClients(db) } }),
  },

  'client show': {
    options: { 'client-id': { type: 'string' } },
    run: async ({ db }, v) => ({ exitCode: 0, output: { ...(await getClient(db, required(v, 'client-id'))) } }),
  },

  'client update': {
    options: { 'client-id': { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true } },
    run: async ({ db, secrets, config }, v) => {
      const clientId = required(v, 'client-id');
      const updated = await updateClientUris(
        db,
        secrets,
        clientId,
        { redirectUris: list(v, 'redirect-uri'), postLogoutRedirectUris: list(v, 'post-logout-redirect-uri') },
        { production: config.production },
      );
      await audit(db, { type: 'client.updated', details: { via: 'cli', client_id: clientId } });
      return { exitCode: 0, output: { ...updated } };
    },
  },

  'client rotate-secret': {
    options: { 'client-id': { type: 'string' } },
    run: async ({ db, secrets }, v) => {
      const rotated = await rotateClientSecret(db, secrets, required(v, 'client-id'));
      await audit(db, { type: 'client.secret_rotated', details: { via: 'cli', client_id: rotated.client_id } });
      return { exitCode: 0, output: rotated };
    },
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

  'client iat create': {
    options: { 'expires-in': { type: 'string' }, reusable: { type: 'boolean' } },
    run: async ({ db, secrets }, v) => {
      const expiresIn = parseDuration(optional(v, 'expires-in') ?? '1d', '--expires-in', { min: 60, max: 30 * 86400 });
      const token = await createInitialAccessToken(db, secrets, { expiresInSeconds: expiresIn, reusable: Boolean(v.reusable) });
      await audit(db, { type: 'client.iat_created', details: { via: 'cli', expires_at: token.expires_at, single_use: token.single_use } });
      return { exitCode: 0, output: { ...token } };
    },
  },

  'resource create': {
    options: { uri: { type: 'string' }, scope: { type: 'string', multiple: true }, name: { type: 'string' }, ttl: { type: 'string' } },
    run: async ({ db, config }, v) => {
      const ttl = optional(v, 'ttl');
      const server = await createResourceServer(
        db,
        {
          identifier: required(v, 'uri'),
          scopes: list(v, 'scope'),
          name: optional(v, 'name'),
          accessTokenTtl: ttl === undefined ? undefined : parseDuration(ttl, '--ttl', { min: 60, max: MAX_SIGNED_TOKEN_LIFETIME }),
        },
        { production: config.production },
      );
      await audit(db, { type: 'resource.created', details: { via: 'cli', resource: server.identifier } });
      return { exitCode: 0, output: { ...server } };
    },
  },

  'resource list': {
    options: {},
    run: async ({ db }) => ({ exitCode: 0, output: { resources: await listResourceServers(db) } }),
  },

  'resource delete': {
    options: { uri: { type: 'string' } },
    run: async ({ db }, v) => {
      const uri = required(v, 'uri');
      await deleteResourceServer(db, uri);
      await audit(db, { type: 'resource.deleted', details: { via: 'cli', resource: uri } });
      return { exitCode: 0, output: { deleted: uri } };
    },
  },

  'consent list': {
    options: { email: { type: 'string' } },
    run: async ({ db }, v) => {
      const user = await userByEmail(db, required(v, 'email'));
      return { exitCode: 0, output: { user_id: user.id, email: user.email, consents: await listConsents(db, user.id) } };
    },
  },

  'consent revoke': {
    options: { email: { type: 'string' }, 'client-id': { type: 'string' } },
    run: async ({ db }, v) => {
      const user = await userByEmail(db, required(v, 'email'));
      const clientId = required(v, 'client-id');
      const result = await revokeConsent(db, user.id, clientId);
      await audit(db, { type: 'consent.revoked', userId: user.id, customerId: user.customer_id, details: { via: 'cli', client_id: clientId, ...result } });
      return { exitCode: 0, output: { revoked: { email: user.email, client_id: clientId }, ...result } };
    },
  },

  'keys list': {
    options: {},
    run: async ({ db }) => ({ exitCode: 0, output: { keys: await listSigningKeys(db) } }),
  },

  'keys rotate': {
    options: { alg: { type: 'string', multiple: true }, 'activate-in': { type: 'string' } },
    run: async ({ db, secrets }, v) => {
      const activateIn = optional(v, 'activate-in');
      const added = await rotateSigningKeys(db, secrets, {
        algs: list(v, 'alg'),
        activateInSeconds: activateIn === undefined ? undefined : parseDuration(activateIn, '--activate-in', { min: 0, max: 30 * 86400 }),
      });
      await audit(db, { type: 'keys.rotated', details: { via: 'cli', kids: added.map((k) => k.kid) } });
      return {
        exitCode: 0,
        output: { added, keys: await listSigningKeys(db) },
        ...(added.some((k) => k.activates_at.getTime() <= Date.now() + 60_000)
          ? { notice: 'The new keys sign (almost) at once: instances that have not picked them up yet may publish a JWKS without them for up to 30 seconds.' }
          : {}),
      };
    },
  },
};

/** Splits argv into the command name (one to three words) and its options. */
export function resolveCommand(argv: string[]): { name: string; command: Command; rest: string[] } {
  const three = argv.slice(0, 3).join(' ');
  if (COMMANDS[three]) return { name: three, command: COMMANDS[three]!, rest: argv.slice(3) };
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
    // Domain errors carry a catalogue key; the CLI speaks English.
    if (error instanceof DomainError) return { exitCode: 1, error: englishError(error) };
    throw error;
  }
}
