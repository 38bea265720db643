// Starts the identity provider: config → database → provider → app → listen. Stops gracefully on SIGTERM/SIGINT.
import type { Server } from 'node:net';
import { startServer } from './app.js';
import { controlSocketPath, listenControlSocket } from './cli/control-socket.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import type { Services } from './services.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(2);
}

const log = createLogger(config.logLevel);

// With the embedded database, the CLI hands its commands to this process (PGlite allows one process).
let control: Server | undefined;
let servicesReady: (services: Services) => void = () => undefined;
if (!config.databaseUrl) {
  const services = new Promise<Services>((resolve) => (servicesReady = resolve));
  control = await listenControlSocket(controlSocketPath(config.dataDir), services, log);
}
const running = await startServer(config, { log });
servicesReady(running.app.services);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  // Requests in flight get up to 8 seconds to finish; after 10 the process exits regardless.
  const force = setTimeout(() => {
    log.error('shutdown took too long; exiting');
    process.exit(1);
  }, 10_000);
  force.unref();
  control?.close();
  try {
    await running.close({ graceMs: 8_000 });
  } catch (err) {
    log.error({ err }, 'shutdown failed');
    process.exit(1);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
