// Mocha root hooks of the browser run (after test/support/hooks.ts has started the shared database and
// SMTP server): Chromium, the fake Google issuer, a provider server with branding and the relying party.
import { startBrowserEnv, stopBrowserEnv } from './support.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    await startBrowserEnv();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await stopBrowserEnv();
  },
};
