// Waits for a quiet machine before a measured run: other jobs on a small shared machine skew
// throughput far more than anything under test. Polls the 1-minute load average.
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadWait {
  /** 1-minute load average when the run started. */
  loadAtStart: number;
  /** Seconds spent waiting. */
  waitedS: number;
  /** The load never dropped below the limit within the allowed time; the run went ahead anyway. */
  timedOut: boolean;
}

export interface LoadWaitOptions {
  /** Wait until the 1-minute load average is below this; 0 or less: do not wait. */
  maxLoad: number;
  /** Give up (and run anyway) after this many seconds. */
  timeoutS: number;
  pollS: number;
  log?: (line: string) => void;
}

export async function waitForLowLoad(opts: LoadWaitOptions): Promise<LoadWait> {
  const started = Date.now();
  const waited = () => (Date.now() - started) / 1000;
  if (opts.maxLoad <= 0) return { loadAtStart: loadavg()[0], waitedS: 0, timedOut: false };
  let announced = false;
  for (;;) {
    const load = loadavg()[0];
    if (load < opts.maxLoad) return { loadAtStart: load, waitedS: waited(), timedOut: false };
    if (waited() >= opts.timeoutS) {
      opts.log?.(`load average still ${load.toFixed(2)} after ${Math.round(waited())} s; running anyway`);
      return { loadAtStart: load, waitedS: waited(), timedOut: true };
    }
    if (!announced) {
      opts.log?.(`waiting for the 1-minute load average (${load.toFixed(2)}) to drop below ${opts.maxLoad}`);
      announced = true;
    }
    await sleep(opts.pollS * 1000);
  }
}
