// When the supervisor restarts a dead engine process. A crash now and then is restarted at once;
// a crash loop (a model that aborts MLX on every start, a machine out of memory) must not spin:
// each quick failure in a row doubles the wait, and after a few the engine is left 'failed' for
// an operator to look at (health says NOT_SERVING, so an orchestrator replaces the server).

export interface RestartPolicy {
  /** Wait before restarting after the first quick failure; doubles with each one in a row. */
  initialDelayMs: number;
  /** The longest wait between restarts. */
  maxDelayMs: number;
  /** A process that served this long before it died counts as stable: the count starts over. */
  stableAfterMs: number;
  /** Quick failures in a row after which the engine is no longer restarted. */
  maxQuickFailures: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  maxQuickFailures: 5,
};

/** Quick failures in a row, after a process that served `servedMs` (0: it never became ready) died. */
export function quickFailuresAfter(policy: RestartPolicy, previous: number, servedMs: number): number {
  return servedMs >= policy.stableAfterMs ? 1 : previous + 1;
}

/** How long to wait before the next start, or undefined to give up. */
export function restartDelay(policy: RestartPolicy, quickFailures: number): number | undefined {
  if (quickFailures > policy.maxQuickFailures) return undefined;
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, quickFailures - 1));
}
