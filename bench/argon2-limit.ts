// The hardware limit for sign-ins: argon2id verifications per second with the provider's parameters on
// this machine, measured in a process of its own (nothing else running), with libuv's thread pool sized to
// the cores (UV_THREADPOOL_SIZE, set by the parent) and twice as many verifications in flight as cores.
// Prints one JSON line: { perSecond, verifications, seconds, inFlight, threads, params, singleMs, cpuMs }.
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

async function run(ms: number): Promise<number> {
  const deadline = performance.now() + ms;
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        await argon2.verify(hash, password);
        done += 1;
      }
    }),
  );
  return done;
}

await run(1000); // warm-up
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const verifications = await run(seconds * 1000);
const cpu = process.cpuUsage(cpu0);
const elapsed = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({
    perSecond: verifications / elapsed,
    verifications,
    seconds: elapsed,
    inFlight,
    threads: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    params,
    singleMs: single[2],
    // CPU time per verification (all threads): unlike the rate, other load on the machine barely changes it.
    cpuMs: (cpu.user + cpu.system) / 1000 / verifications,
  })}\n`,
);
