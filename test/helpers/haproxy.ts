// The real HAProxy (Debian's) on a config of ours, in front of replicas the test started: its
// addresses, and its stats to see where requests went and which replicas it counts as up.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Runs HAProxy on `config` in front of two replicas; resolves once it sees every replica up. */
export async function startHaproxy(config: string, replicas: ReplicaAddress[]): Promise<Balancer> {
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-test-'));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const [restPort, grpcPort, statsPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    REST_BIND: `127.0.0.1:${restPort}`,
    GRPC_BIND: `127.0.0.1:${grpcPort}`,
    STATS_BIND: `127.0.0.1:${statsPort}`,
    REPLICA1_REST: replicas[0].rest,
    REPLICA2_REST: replicas[1].rest,
    REPLICA1_GRPC: replicas[0].grpc,
    REPLICA2_GRPC: replicas[1].grpc,
  };
  const proc: ChildProcess = spawn(HAPROXY as string, ['-f', file, '-db'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const statsBase = `http://127.0.0.1:${statsPort}`;
  const stats = () => haproxyStats(statsBase);
  const close = async () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  let seen = '';
  try {
    await waitUntil(
      'HAProxy sees both replicas up in every backend',
      async () => {
        if (proc.exitCode !== null) throw new Error(`haproxy exited with ${proc.exitCode}: ${stderr}`);
        const servers = (await stats().catch(() => [])).filter((r) => /^r\d$/.test(r.svname));
        seen = servers.map((r) => `${r.pxname}/${r.svname} ${r.status} ${r.check_status} ${r.check_desc ?? ''}`).join('; ');
        return servers.length === 8 && servers.every((r) => r.status === 'UP');
      },
      500,
    );
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}; servers: ${seen}; haproxy said: ${stderr}`);
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
