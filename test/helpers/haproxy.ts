// The real HAProxy (Debian's) on a config of ours, in front of replicas the test started: its
// addresses, and its stats to see where requests went and which replicas it counts as up.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliProcess, launchCli } from './cli-process.ts';
import { waitUntil } from './full-server.ts';
import { skipUnlessInstalled } from './required-tool.ts';

export const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p));
export const SHIPPED_HAPROXY_CONFIG = readFileSync(new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url), 'utf8');

/** The shipped config with every balance line made round robin: the same routes, no affinity. */
export function roundRobinVariant(config: string): string {
  const variant = config.replace(/^(\s*)balance .*$/gm, '$1balance roundrobin');
  if (variant === config) throw new Error('the config has no balance line');
  return variant;
}

/** The `skip` option for suites that need HAProxy (see skipUnlessInstalled). */
export function haproxySkip(): string | false {
  return skipUnlessInstalled(!HAPROXY && 'haproxy is not installed', 'run scripts/setup.sh (or apt-get install haproxy)');
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * A replica: the real executable on a tiny model at fixed ports (a restarted one takes its place
 * in the balancer's config, as a pod or a Compose service would), small batch and caches, warnings
 * only; `extra` arguments after those. Resolves once it has printed its addresses, before it is healthy.
 */
export function launchReplica(
  modelDir: string,
  host: string,
  restPort: number | string,
  grpcPort: number | string,
  extra: string[] = [],
): Promise<CliProcess> {
  return launchCli([
    ...['--model', modelDir, '--host', host, '--port', String(restPort), '--grpc-port', String(grpcPort)],
    ...['--batch-size', '8', '--kv-cache-bytes', '256MiB', '--radix-cache-size', '64MiB', '--log-level', 'warn'],
    ...extra,
  ]);
}

/** Where HAProxy reaches one replica: host:port of its REST and of its gRPC port. */
export interface ReplicaAddress {
  rest: string;
  grpc: string;
}

export type StatsRow = Record<string, string>;

export interface Balancer {
  rest: string;
  grpc: string;
  /** HAProxy's Prometheus endpoint (…/metrics) and stats page. */
  statsBase: string;
  /** HAProxy's stats, one row per frontend, backend and server (`pxname`, `svname`, `status`, `stot`, …). */
  stats(): Promise<StatsRow[]>;
  /** Per backend and server, the requests HAProxy sent there (its stats' `stot`). */
  counts(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** HAProxy's stats (its CSV export, one row per frontend, backend and server) from its stats page at `statsBase`. */
export async function haproxyStats(statsBase: string): Promise<StatsRow[]> {
  const res = await fetch(`${statsBase}/stats;csv`);
  const [header, ...rows] = (await res.text()).trim().split('\n');
  const cols = header.replace(/^# /, '').split(',');
  return rows.map((row) => Object.fromEntries(row.split(',').map((v, i) => [cols[i], v])));
}

export interface HaproxyProcess {
  /** Why HAProxy has exited (with what it said), or undefined while it runs. */
  exited(): string | undefined;
  /** What it has written to stderr. */
  stderr(): string;
  /** Stops it and removes its config file. */
  close(): Promise<void>;
}

/** HAProxy in the foreground on `config`, with `env` (and PATH) as its whole environment. */
export function spawnHaproxy(config: string, env: Record<string, string>): HaproxyProcess {
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-test-'));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const proc: ChildProcess = spawn(HAPROXY as string, ['-f', file, '-db'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    exited: () => (proc.exitCode !== null ? `haproxy exited with ${proc.exitCode}: ${stderr}` : undefined),
    stderr: () => stderr,
    async close() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs HAProxy on `config` in front of two replicas; resolves once it sees every replica up. */
export async function startHaproxy(config: string, replicas: ReplicaAddress[]): Promise<Balancer> {
  const [restPort, grpcPort, statsPort] = [await freePort(), await freePort(), await freePort()];
  const haproxy = spawnHaproxy(config, {
    REST_BIND: `127.0.0.1:${restPort}`,
    GRPC_BIND: `127.0.0.1:${grpcPort}`,
    STATS_BIND: `127.0.0.1:${statsPort}`,
    REPLICA1_REST: replicas[0].rest,
    REPLICA2_REST: replicas[1].rest,
    REPLICA1_GRPC: replicas[0].grpc,
    REPLICA2_GRPC: replicas[1].grpc,
  });
  const statsBase = `http://127.0.0.1:${statsPort}`;
  const stats = () => haproxyStats(statsBase);
  const close = () => haproxy.close();
  let seen = '';
  try {
    await waitUntil(
      'HAProxy sees both replicas up in every backend',
      async () => {
        const exited = haproxy.exited();
        if (exited) throw new Error(exited);
        const servers = (await stats().catch(() => [])).filter((r) => /^r\d$/.test(r.svname));
        seen = servers.map((r) => `${r.pxname}/${r.svname} ${r.status} ${r.check_status} ${r.check_desc ?? ''}`).join('; ');
        return servers.length === 8 && servers.every((r) => r.status === 'UP');
      },
      500,
    );
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}; servers: ${seen}; haproxy said: ${haproxy.stderr()}`);
  }
  return {
    rest: `http://127.0.0.1:${restPort}`,
    grpc: `http://127.0.0.1:${grpcPort}`,
    statsBase,
    stats,
    async counts() {
      return new Map((await stats()).map((r) => [`${r.pxname}/${r.svname}`, Number(r.stot)]));
    },
    close,
  };
}
