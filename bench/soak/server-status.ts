// The server's own account of its load (gRPC GetServerStatus), and the idle check that ends a
// soak: once the load stops, every engine slot, queue place, service request and prefix-cache
// lock must be given back.
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineState, type GenerationClient, type ServerStatus } from '../../clients/typescript/src/index.ts';

export interface StatusSnapshot {
  engineState: string;
  /**
   * False when the server answered without the engine's figures: it waits only briefly for a busy
   * engine, then reports zeros (running, waiting, KV, prefix cache, resident) with state READY.
   */
  engineFigures: boolean;
  running: number;
  waiting: number;
  inFlight: number;
  kvUsedBytes: number;
  prefixCacheBytes: number;
  lockedBytes: number;
  engineResidentBytes: number;
  engineRestarts: number;
  prefixCacheHitRate: number;
}

export function snapshot(s: ServerStatus): StatusSnapshot {
  const engineState = EngineState[s.engineState] ?? String(s.engineState);
  return {
    engineState,
    engineFigures: engineState !== 'READY' || s.engineResidentBytes > 0n,
    running: s.runningRequests,
    waiting: s.waitingRequests,
    inFlight: s.inFlightRequests,
    kvUsedBytes: Number(s.kvCacheBytesUsed),
    prefixCacheBytes: Number(s.prefixCacheBytes),
    lockedBytes: Number(s.prefixCacheLockedBytes),
    engineResidentBytes: Number(s.engineResidentBytes),
    engineRestarts: s.engineRestarts,
    prefixCacheHitRate: s.prefixCacheHitRate,
  };
}

export async function fetchStatus(client: GenerationClient): Promise<StatusSnapshot> {
  return snapshot(await client.status({ timeoutMs: 10_000 }));
}

/** One line of the leak check: a figure, what it must be, and whether it is (null: reported, not judged). */
export interface Check {
  what: string;
  value: string;
  expected: string;
  ok: boolean | null;
}

/** What an idle server's status must show. */
export function idleChecks(s: StatusSnapshot, restartsBefore: number): Check[] {
  const zero = (what: string, v: number): Check => ({ what, value: String(v), expected: '0', ok: v === 0 });
  return [
    zero('GetServerStatus running_requests (engine slots)', s.running),
    zero('GetServerStatus waiting_requests (engine queue)', s.waiting),
    zero('GetServerStatus in_flight_requests (service)', s.inFlight),
    zero('GetServerStatus prefix_cache_locked_bytes (cache locks)', s.lockedBytes),
    // The decode batch keeps its buffers when its last row leaves (until the next request
    // reallocates them), so this is the size of those buffers rather than KV in use: reported only.
    {
      what: 'GetServerStatus kv_cache_bytes_used (decode batch buffers)',
      value: String(s.kvUsedBytes),
      expected: '0 once the batch frees its buffers',
      ok: null,
    },
    { what: 'GetServerStatus engine_state', value: s.engineState, expected: 'READY', ok: s.engineState === 'READY' },
    {
      what: 'GetServerStatus engine_restarts during the soak',
      value: String(s.engineRestarts - restartsBefore),
      expected: '0',
      ok: s.engineRestarts === restartsBefore,
    },
  ];
}

export interface IdleWait {
  idle: boolean;
  /** From the call until idle (or until giving up). */
  waitedMs: number;
  last?: StatusSnapshot;
  error?: string;
}

/** Polls the status until nothing runs, waits or holds a lock, or `timeoutMs` passes. */
export async function waitForIdle(client: GenerationClient, timeoutMs: number, pollMs = 250): Promise<IdleWait> {
  const t0 = performance.now();
  let last: StatusSnapshot | undefined;
  let error: string | undefined;
  for (;;) {
    try {
      last = await fetchStatus(client);
      error = undefined;
      const idle = last.engineFigures && last.running === 0 && last.waiting === 0 && last.inFlight === 0 && last.lockedBytes === 0;
      if (idle) return { idle: true, waitedMs: performance.now() - t0, last };
    } catch (err) {
      error = (err as Error).message;
    }
    if (performance.now() - t0 > timeoutMs) return { idle: false, waitedMs: performance.now() - t0, last, error };
    await sleep(pollMs);
  }
}

/** Waits until the server serves generation requests (health SERVING). */
export async function waitForServing(client: GenerationClient, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  let why = 'not serving yet';
  while (performance.now() - t0 < timeoutMs) {
    try {
      if (await client.isServing({ timeoutMs: 5000 })) return;
    } catch (err) {
      why = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`the server did not start serving within ${Math.round(timeoutMs / 1000)} s (${why})`);
}
