// Mocha root hooks: start the shared test environment once per run.
import { startTestEnv, stopTestEnv } from './env.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    await startTestEnv();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await stopTestEnv();
  },
};
