// Load phases: N workers, each running one operation after the other until the time (or the number of
// operations) is up; latency per operation, and the server's CPU time and RSS from /proc.
import { readdirSync, readFileSync } from 'node:fs';

export interface PhaseResult {
  name: string;
  ops: number;
  errors: number;
  firstErrors: string[];
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  /** Server CPU time / wall time (1.0 = one core busy). */
  serverCpu: number | undefined;
  /** The part of serverCpu spent in the kernel (system time: sockets, syscalls). */
  serverSystemCpu: number | undefined;
  /** Load generator (this process) CPU time / wall time. */
  clientCpu: number;
  /** The database server (PostgreSQL), in cores. */
  dbCpu: number | undefined;
  /** Everything else busy on the machine meanwhile (other processes, PostgreSQL, the kernel), in cores. */
  otherCpu: number | undefined;
}

export interface PhaseOptions {
  concurrency: number;
  seconds: number;
  /** Stop after this many operations (all workers together). */
  maxOps?: number;
  /** Not measured: run this long first (JIT, caches, connection pools). */
  warmupSeconds?: number;
  /** The server process whose CPU time is measured. */
  pid?: number | undefined;
  /** The database server's processes (PostgreSQL's postmaster and its children), measured apart. */
  dbPids?: (() => number[]) | undefined;
}

/** CPU seconds per process id. */
function cpuOf(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = processCpuSeconds(pid);
    if (s !== undefined) out.set(pid, s);
  }
  return out;
}

/** Processes whose parent is `parent`, plus the parent itself. */
export function processTree(parent: number): number[] {
  const pids = [parent];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

const CLK_TCK = 100; // Linux USER_HZ

/** User and system CPU seconds of a process (all its threads). */
export function processCpuTimes(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (the 14th and 15th fields of the line)
    return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
  } catch {
    return undefined;
  }
}

export function processCpuSeconds(pid: number): number | undefined {
  const t = processCpuTimes(pid);
  return t ? t.user + t.system : undefined;
}

/** Peak resident set size (VmHWM) of a process, in MiB. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores, from /proc/stat). */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export async function drive(options: PhaseOptions, op: (worker: number) => Promise<void>, record: boolean) {
  const latencies: number[] = [];
  const firstErrors: string[] = [];
  let errors = 0;
  let started = 0;
  const deadline = performance.now() + (record ? options.seconds : (options.warmupSeconds ?? 0)) * 1000;
  const max = record ? (options.maxOps ?? Infinity) : Infinity;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_v, worker) => {
      while (performance.now() < deadline && started < max) {
        started += 1;
        const t0 = performance.now();
        try {
          await op(worker);
          if (record) latencies.push(performance.now() - t0);
        } catch (error) {
          errors += 1;
          if (firstErrors.length < 3) firstErrors.push(error instanceof Error ? error.message : String(error));
          // Back off a little so a broken phase does not spin.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  return { latencies, errors, firstErrors };
}

/** One measured stretch of load: raw counts, so that several stretches (slices) can be added up. */
export interface Slice {
  latencies: number[];
  errors: number;
  firstErrors: string[];
  seconds: number;
  serverUser?: number;
  serverSystem?: number;
  dbSeconds?: number;
  clientSeconds: number;
  machineBusy?: number;
}

export async function measureSlice(options: PhaseOptions, op: (worker: number) => Promise<void>): Promise<Slice> {
  const cpu0 = options.pid ? processCpuTimes(options.pid) : undefined;
  const own0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  const db0 = options.dbPids ? cpuOf(options.dbPids()) : undefined;
  const t0 = performance.now();
  const { latencies, errors, firstErrors } = await drive(options, op, true);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = options.pid ? processCpuTimes(options.pid) : undefined;
  const own = process.cpuUsage(own0);
  const busy1 = machineBusySeconds();
  let dbSeconds: number | undefined;
  if (db0) {
    dbSeconds = 0;
    for (const [pid, s1] of cpuOf(options.dbPids!())) dbSeconds += s1 - (db0.get(pid) ?? 0);
  }
  return {
    latencies,
    errors,
    firstErrors,
    seconds,
    ...(cpu0 && cpu1 ? { serverUser: cpu1.user - cpu0.user, serverSystem: cpu1.system - cpu0.system } : {}),
    ...(dbSeconds !== undefined ? { dbSeconds } : {}),
    clientSeconds: (own.user + own.system) / 1e6,
    ...(busy0 !== undefined && busy1 !== undefined ? { machineBusy: busy1 - busy0 } : {}),
  };
}

export function summarize(name: string, slices: Slice[]): PhaseResult {
  const sum = (f: (s: Slice) => number | undefined) => (slices.every((s) => f(s) !== undefined) ? slices.reduce((a, s) => a + f(s)!, 0) : undefined);
  const seconds = sum((s) => s.seconds)!;
  const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const user = sum((s) => s.serverUser);
  const system = sum((s) => s.serverSystem);
  const serverCpu = user !== undefined && system !== undefined ? (user + system) / seconds : undefined;
  const dbSeconds = sum((s) => s.dbSeconds);
  const dbCpu = dbSeconds !== undefined ? dbSeconds / seconds : undefined;
  const clientCpu = sum((s) => s.clientSeconds)! / seconds;
  const busy = sum((s) => s.machineBusy);
  return {
    name,
    ops: latencies.length,
    errors: sum((s) => s.errors)!,
    firstErrors: slices.flatMap((s) => s.firstErrors).slice(0, 3),
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    serverCpu,
    serverSystemCpu: system !== undefined ? system / seconds : undefined,
    clientCpu,
    dbCpu,
    otherCpu: busy !== undefined ? Math.max(0, busy / seconds - clientCpu - (serverCpu ?? 0) - (dbCpu ?? 0)) : undefined,
  };
}

export async function runPhase(name: string, options: PhaseOptions, op: (worker: number) => Promise<void>): Promise<PhaseResult> {
  if (options.warmupSeconds) await drive(options, op, false);
  return summarize(name, [await measureSlice(options, op)]);
}

export interface Contender {
  options: PhaseOptions;
  op: (worker: number) => Promise<void>;
}

/**
 * The same operation against several servers, taking turns in short slices (`rounds` each, of
 * options.seconds / rounds): load from other work on the machine, which comes and goes, then falls on
 * all of them alike, and their ratio means something on a shared machine.
 */
export async function runInterleaved(name: string, contenders: Contender[], rounds: number): Promise<PhaseResult[]> {
  for (const c of contenders) if (c.options.warmupSeconds) await drive(c.options, c.op, false);
  const slices: Slice[][] = contenders.map(() => []);
  for (let round = 0; round < rounds; round += 1) {
    for (const [i, c] of contenders.entries()) {
      slices[i]!.push(await measureSlice({ ...c.options, seconds: c.options.seconds / rounds }, c.op));
    }
  }
  return slices.map((s) => summarize(name, s));
}
