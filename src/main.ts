// Starts the identity provider: config → database → provider → app → listen. Stops gracefully on SIGTERM/SIGINT.
import type { Server } from 'node:net';
import { startServer } from './app.js';
import { controlSocketPath, listenControlSocket } from './cli/control-socket.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(2);
}

const log = createLogger(config.logLevel);
const running = await startServer(config, { log });
const { services } = running.app;

let control: Server | undefined;
if (!config.databaseUrl) {
  control = await listenControlSocket(controlSocketPath(config.dataDir), services, log);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  control?.close();
  await running.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
