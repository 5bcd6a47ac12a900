// Memory over time: every few seconds the RSS of the server's process tree (when its pid is
// known) and the engine's own figure and load from GetServerStatus.
import type { GenerationClient } from '../../clients/typescript/src/index.ts';
import { processTreeRss } from './process-memory.ts';
import { fetchStatus } from './server-status.ts';

export interface MemorySample {
  /** Seconds since the load started. */
  tS: number;
  /** 'load' while clients run, 'idle' once the server is idle again afterwards. */
  phase: 'load' | 'idle';
  /** RSS of the server's main process, of its descendants (the engine), and both (null without a pid). */
  mainBytes: number | null;
  engineBytes: number | null;
  totalBytes: number | null;
  /** GetServerStatus engine_resident_bytes (null when the call failed). */
  engineResidentBytes: number | null;
  /** KV the prefix cache keeps (GetServerStatus prefix_cache_bytes), part of the engine's memory. */
  prefixCacheBytes: number | null;
  running: number | null;
  waiting: number | null;
  inFlight: number | null;
  /** Requests the clients had finished by then. */
  requestsDone: number;
}

export class MemorySampler {
  readonly samples: MemorySample[] = [];
  /** Samples whose GetServerStatus call failed. */
  statusFailures = 0;
  /** Samples whose GetServerStatus answer had no engine figures (the engine was too busy to give them in time). */
  withoutEngineFigures = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly client: GenerationClient,
    private readonly serverPid: number | undefined,
    private readonly t0: number,
    private readonly requestsDone: () => number,
  ) {}

  async sample(phase: MemorySample['phase']): Promise<MemorySample> {
    const tS = (performance.now() - this.t0) / 1000;
    const tree = this.serverPid === undefined ? undefined : processTreeRss(this.serverPid);
    const answer = await fetchStatus(this.client).catch(() => undefined);
    if (!answer) this.statusFailures++;
    else if (!answer.engineFigures) this.withoutEngineFigures++;
    // Zeros standing in for figures the engine did not give in time are left out, not recorded as 0.
    const status = answer?.engineFigures ? answer : undefined;
    const s: MemorySample = {
      tS,
      phase,
      mainBytes: tree?.mainBytes ?? null,
      engineBytes: tree?.childBytes ?? null,
      totalBytes: tree?.totalBytes ?? null,
      engineResidentBytes: status?.engineResidentBytes ?? null,
      prefixCacheBytes: status?.prefixCacheBytes ?? null,
      running: status?.running ?? null,
      waiting: status?.waiting ?? null,
      inFlight: answer?.inFlight ?? null,
      requestsDone: this.requestsDone(),
    };
    this.samples.push(s);
    return s;
  }

  /** Samples every `intervalMs` until stop(); a sample still being taken is not overlapped. */
  start(intervalMs: number): void {
    const tick = () => {
      if (this.busy) return;
      this.busy = true;
      void this.sample('load').finally(() => (this.busy = false));
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get latest(): MemorySample | undefined {
    return this.samples[this.samples.length - 1];
  }
}

export interface RssSummary {
  startBytes: number;
  peakBytes: number;
  peakAtS: number;
  endBytes: number;
  /** After the load, once the server was idle. */
  idleBytes: number | null;
  /** Least-squares slope over the second half of the load, in MiB per minute (null with too few samples). */
  secondHalfMiBPerMin: number | null;
  /** The same over the last quarter: whether it was still growing when the load ended. */
  lastQuarterMiBPerMin: number | null;
}

/** Least-squares slope of (seconds, bytes) points in MiB per minute; null for fewer than 3 points. */
function slopeMiBPerMin(points: Array<[number, number]>): number | null {
  if (points.length < 3) return null;
  const mt = points.reduce((a, [t]) => a + t, 0) / points.length;
  const mv = points.reduce((a, [, v]) => a + v, 0) / points.length;
  const cov = points.reduce((a, [t, v]) => a + (t - mt) * (v - mv), 0);
  const varT = points.reduce((a, [t]) => a + (t - mt) ** 2, 0);
  return varT > 0 ? ((cov / varT) * 60) / 1024 ** 2 : null;
}

/** Start, peak, end and trend of one figure of the samples (null where it was never measured). */
export function rssSummary(samples: MemorySample[], figure: (s: MemorySample) => number | null): RssSummary | null {
  const load = samples.filter((s) => s.phase === 'load' && figure(s) !== null);
  if (load.length === 0) return null;
  const v = (s: MemorySample) => figure(s) as number;
  const peak = load.reduce((p, s) => (v(s) > v(p) ? s : p));
  const idle = samples.filter((s) => s.phase === 'idle' && figure(s) !== null).pop();
  const lastT = load[load.length - 1].tS;
  const since = (fraction: number) => load.filter((s) => s.tS >= lastT * fraction).map((s): [number, number] => [s.tS, v(s)]);
  return {
    startBytes: v(load[0]),
    peakBytes: v(peak),
    peakAtS: peak.tS,
    endBytes: v(load[load.length - 1]),
    idleBytes: idle ? v(idle) : null,
    secondHalfMiBPerMin: slopeMiBPerMin(since(0.5)),
    lastQuarterMiBPerMin: slopeMiBPerMin(since(0.75)),
  };
}
