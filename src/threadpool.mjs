// Preloaded before everything else (`node --import ./src/threadpool.mjs --import tsx src/main.ts`, see
// package.json and the Dockerfile): sizes libuv's thread pool, where argon2id runs, to the cores. It must
// run before anything uses the pool (tsx's loader already does), so it cannot live in main.ts. Default 4
// threads would oversubscribe a 2-core machine (argon2id limit 75-80 instead of 87-92 verifications/s
// there, docs/benchmarks.md); more cores than 4 would sit idle. An explicit UV_THREADPOOL_SIZE wins.
import os from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(os.availableParallelism());
