// A throwaway PostgreSQL server for the benchmark, started the way .ci/run does it: Debian's binaries
// (/usr/lib/postgresql/<version>/bin), initdb + pg_ctl as the `postgres` user on a free port in a temp dir,
// listening on 127.0.0.1 only. fsync is off (a benchmark's data does not need to survive a crash; say so
// next to the figures). Stopped and removed at the end.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface LocalPostgres {
  url: string;
  version: string;
  /** The postmaster's process id (its children are the backends). */
  pid: number;
  stop(): void;
}

export function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(a) - Number(b));
  const latest = versions.at(-1);
  return latest ? path.join(root, latest, 'bin') : undefined;
}

export const INSTALL_HINT =
  'PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb). Install them with `apt-get install postgresql` ' +
  '(as .ci/run does), or point DATABASE_URL at a server whose database the benchmark may fill.';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startLocalPostgres(bin: string): Promise<LocalPostgres> {
  const isRoot = process.getuid?.() === 0;
  let pgUser = os.userInfo().username;
  let uid: number | undefined;
  let gid: number | undefined;
  if (isRoot) {
    try {
      uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      pgUser = 'postgres';
    } catch {
      throw new Error('running as root, but there is no `postgres` user to run the server as (initdb refuses root)');
    }
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'idp-bench-pg-'));
  if (uid !== undefined && gid !== undefined) chownSync(dir, uid, gid);
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = isRoot ? ['runuser', ['-u', pgUser, '--', cmd, ...args]] : [cmd, args];
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  };
  const data = path.join(dir, 'data');
  const port = await freePort();
  try {
    run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-instructions']);
    run(path.join(bin, 'pg_ctl'), [
      '-D', data, '-l', path.join(dir, 'server.log'), '-w',
      '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
      'start',
    ]);
    execFileSync(path.join(bin, 'psql'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', 'CREATE DATABASE idp_bench'], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const e = error as { stderr?: string; message: string };
    throw new Error(`could not start PostgreSQL: ${e.stderr || e.message}`);
  }
  const version = execFileSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim().split(' ')[2] ?? '?';
  const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let stopped = false;
  return {
    pid,
    url: `postgres://postgres@127.0.0.1:${port}/idp_bench`,
    version,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
