// The hardware limit for sign-ins: argon2id verifications per second with the provider's parameters on
// this machine, in a process of its own, with libuv's thread pool sized to the cores (UV_THREADPOOL_SIZE,
// set by the parent) and twice as many verifications in flight as cores.
// Run alone it measures once and prints one JSON line. Forked with an IPC channel (bench/run.ts), it
// measures on request: {ms} → {verifications, seconds, cpuMs}, so the limit can be measured in turns with
// the sign-ins it bounds (other load on a shared machine then falls on both alike).
import os from 'node:os';
import argon2 from 'argon2';

const params = JSON.parse(process.env.BENCH_ARGON2_PARAMS ?? '{}') as { memoryCost: number; timeCost: number; parallelism: number };
const seconds = Number(process.env.BENCH_ARGON2_SECONDS ?? 5);
const cores = os.availableParallelism();
const inFlight = Number(process.env.BENCH_ARGON2_IN_FLIGHT ?? cores * 2);

const password = 'correct horse battery staple';
const hash = await argon2.hash(password, { type: argon2.argon2id, ...params });

// One verification alone (latency floor of the password step).
const single: number[] = [];
for (let i = 0; i < 5; i += 1) {
  const t0 = performance.now();
  if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed');
  single.push(performance.now() - t0);
}
single.sort((a, b) => a - b);

async function run(ms: number): Promise<{ verifications: number; seconds: number; cpuMs: number }> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + ms;
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        await argon2.verify(hash, password);
        done += 1;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  // CPU time per verification (all threads): unlike the rate, other load on the machine barely changes it.
  return { verifications: done, seconds: (performance.now() - t0) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 / Math.max(done, 1) };
}

await run(1000); // warm-up
const info = { inFlight, threads: Number(process.env.UV_THREADPOOL_SIZE ?? 4), params, singleMs: single[2] };

if (process.send) {
  process.on('message', (message: { ms: number }) => {
    void run(message.ms).then((result) => process.send!({ ...info, ...result }));
  });
  process.send({ ready: true, ...info });
  process.on('disconnect', () => process.exit(0));
} else {
  const result = await run(seconds * 1000);
  process.stdout.write(`${JSON.stringify({ ...info, ...result, perSecond: result.verifications / result.seconds })}\n`);
}
