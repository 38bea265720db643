// PGlite allows one process per data directory. While a server holds the embedded database, `idp`
// hands its command to that server over a Unix socket in DATA_DIR (mode 0600 in a 0700 directory, so
// only the same OS user can connect), and the server runs the same command code.
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../log.js';
import { runCommand, type CommandContext, type CommandResult } from './commands.js';

const MAX_REQUEST_BYTES = 1024 * 1024;

export function controlSocketPath(dataDir: string): string {
  return path.join(dataDir, 'idp.sock');
}

interface Request {
  argv: string[];
  stdin?: string;
}

/**
 * Listens before the server opens the database (`context` resolves once it has), so there is no moment
 * at which a CLI finds no socket and opens the embedded database next to a starting server.
 */
export async function listenControlSocket(socketPath: string, context: Promise<Omit<CommandContext, 'stdin'>>, log: Logger): Promise<net.Server> {
  if (existsSync(socketPath)) {
    // A socket left by a server that did not shut down cleanly; a live one would have answered the CLI.
    if (await isLive(socketPath)) throw new Error(`another server is already using ${path.dirname(socketPath)}`);
    unlinkSync(socketPath);
  }
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES) return socket.destroy();
      const newline = buffer.indexOf('\n');
      if (newline === -1) return;
      socket.pause();
      void answer(buffer.slice(0, newline))
        .then((result) => socket.end(`${JSON.stringify(result)}\n`))
        .catch((err: unknown) => {
          log.error({ err }, 'control socket command failed');
          socket.end(`${JSON.stringify({ exitCode: 1, error: 'internal error in the server; see its log' })}\n`);
        });
    });
    socket.on('error', () => socket.destroy());
  });

  async function answer(line: string): Promise<CommandResult> {
    let request: Request;
    try {
      request = JSON.parse(line) as Request;
      if (!Array.isArray(request.argv) || !request.argv.every((a) => typeof a === 'string')) throw new Error('bad request');
    } catch {
      return { exitCode: 2, error: 'malformed control request' };
    }
    return runCommand({ ...(await context), stdin: request.stdin }, request.argv);
  }

  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(socketPath, 0o600);
  return server;
}

function isLive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Sends a command to a running server. Returns undefined when no server listens (the CLI then opens the database itself). */
export async function sendToServer(socketPath: string, request: Request): Promise<CommandResult | undefined> {
  if (!existsSync(socketPath)) return undefined;
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let connected = false;
    let buffer = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: string) => (buffer += chunk));
    socket.once('end', () => {
      try {
        resolve(JSON.parse(buffer) as CommandResult);
      } catch {
        reject(new Error('the running server gave no answer'));
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (!connected && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) resolve(undefined);
      else reject(err);
    });
  });
}
