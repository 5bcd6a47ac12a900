// Resident memory (VmRSS) of a process and all its descendants, from Linux /proc: the server's
// main process and its engine child. Elsewhere (no /proc) it reports nothing.
import { readdirSync, readFileSync } from 'node:fs';

export interface TreeRss {
  /** The process itself. */
  mainBytes: number;
  /** All its descendants (the engine process). */
  childBytes: number;
  totalBytes: number;
  /** How many descendants were found. */
  children: number;
}

interface ProcStatus {
  ppid: number;
  rssBytes: number;
}

function readStatus(pid: string): ProcStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // gone between listing and reading
  }
  const field = (name: string) => new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1];
  const ppid = field('PPid');
  if (ppid === undefined) return undefined;
  // Kernel threads and zombies have no VmRSS line.
  return { ppid: Number(ppid), rssBytes: Number(field('VmRSS') ?? 0) * 1024 };
}

/** RSS of `pid` and its descendants, or undefined when the process is gone or /proc is missing. */
export function processTreeRss(pid: number): TreeRss | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const statuses = new Map<number, ProcStatus>();
  for (const e of entries) {
    const s = readStatus(e);
    if (s) statuses.set(Number(e), s);
  }
  const main = statuses.get(pid);
  if (!main) return undefined;
  const childrenOf = new Map<number, number[]>();
  for (const [p, s] of statuses) childrenOf.set(s.ppid, [...(childrenOf.get(s.ppid) ?? []), p]);
  let childBytes = 0;
  let children = 0;
  const stack = [...(childrenOf.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    childBytes += statuses.get(p)?.rssBytes ?? 0;
    children++;
    stack.push(...(childrenOf.get(p) ?? []));
  }
  return { mainBytes: main.rssBytes, childBytes, totalBytes: main.rssBytes + childBytes, children };
}
