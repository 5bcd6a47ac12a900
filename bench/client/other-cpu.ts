// How much CPU other processes took while a level ran. On a small shared machine another job
// starting mid-run slows the server under test without any sign in the figures; the load average
// checked before the run cannot see it. Reads Linux /proc: the machine's busy CPU time, minus the
// CPU time of this process and of the server's process tree. Elsewhere it reports nothing.
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports CPU times in clock ticks of 1/100 s on every common architecture. */
const TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  /** CPU seconds the whole machine spent busy (all cores, idle and I/O wait excluded). */
  machineBusyS: number;
  /** CPU seconds of the measured processes (this client and the server tree), exited children included. */
  measuredS: number;
}

export interface OtherCpu {
  /** CPU seconds other processes used during the level. */
  cpuSeconds: number;
  /** The same as an average number of busy cores over the level's wall time. */
  cores: number;
}

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readProcStat(pid: string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between listing and reading
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const n = (field: number) => Number(fields[field - 3]);
  return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
}

/** The CPU time of `roots` and all their descendants. */
function treeTicks(roots: number[]): number {
  const stats = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readProcStat(entry);
    if (s) stats.set(Number(entry), s);
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (roots.includes(p)) return true;
      const s = stats.get(p);
      if (!s) return false;
      p = s.ppid;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, s] of stats) if (inTree(pid)) ticks += s.ticks;
  return ticks;
}

/** A snapshot to diff against a later one, or undefined where /proc is not available. */
export function cpuSnapshot(serverPid?: number): CpuSnapshot | undefined {
  let statLine: string;
  try {
    statLine = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, , , irq, softirq, steal] = statLine.trim().split(/\s+/).slice(1).map(Number);
  const roots = serverPid ? [process.pid, serverPid] : [process.pid];
  return {
    machineBusyS: (user + nice + system + irq + softirq + (steal || 0)) / TICKS_PER_SECOND,
    measuredS: treeTicks(roots) / TICKS_PER_SECOND,
  };
}

/**
 * Other processes' CPU between two snapshots. Without a server pid the server counts as "other"
 * (useful only when the server runs elsewhere), so callers pass one whenever they can.
 */
export function otherCpuBetween(before: CpuSnapshot | undefined, after: CpuSnapshot | undefined, wallS: number): OtherCpu | null {
  if (!before || !after || wallS <= 0) return null;
  const cpuSeconds = Math.max(0, after.machineBusyS - before.machineBusyS - (after.measuredS - before.measuredS));
  return { cpuSeconds, cores: cpuSeconds / wallS };
}
