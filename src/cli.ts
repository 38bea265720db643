// The operator CLI: `npm run idp -- <command>` or `npx idp <command>`. See cli/commands.ts.
import { PasswordHasher } from './accounts/passwords.js';
import { controlSocketPath, sendToServer } from './cli/control-socket.js';
import { needsStdin, runCommand, type CommandResult } from './cli/commands.js';
import { ConfigError, loadConfig } from './config.js';
import { createDb } from './db/index.js';
import { createLogger } from './log.js';
import { createMailer } from './mail/mailer.js';
import { Secrets } from './security/crypto.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function execute(argv: string[]): Promise<CommandResult> {
  const config = loadConfig();
  const stdin = needsStdin(argv) ? await readStdin() : undefined;
  if (!config.databaseUrl) {
    const viaServer = await sendToServer(controlSocketPath(config.dataDir), { argv, ...(stdin === undefined ? {} : { stdin }) });
    if (viaServer) return viaServer;
  }
  const db = createDb({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir });
  try {
    if (argv[0] !== 'migrate') await db.migrate.latest();
    const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, dataDir: config.dataDir, log });
    return await runCommand({ db, secrets: new Secrets(config.dataEncryptionKey), hasher: new PasswordHasher(config.argon2), mailer, log, stdin, config }, argv);
  } finally {
    await db.destroy();
  }
}

try {
  const result = await execute(process.argv.slice(2));
  if (result.output) process.stdout.write(`${JSON.stringify(result.output, null, 2)}\n`);
  if (result.notice) process.stderr.write(`note: ${result.notice}\n`);
  if (result.error) process.stderr.write(`error: ${result.error}\n`);
  process.exitCode = result.exitCode;
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    const e = error as { code?: string; message?: string };
    process.stderr.write(`error: ${e.code === 'ECONNREFUSED' ? 'cannot reach the database (DATABASE_URL)' : (e.message ?? String(error))}\n`);
    process.exitCode = 1;
  }
}
