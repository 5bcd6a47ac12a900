// Finds stop strings in streamed text. Text that could still turn out to be the start of a stop
// string is held back, so a stop string is never emitted even when it arrives split across deltas
// (or tokens). When several stop strings occur, the one that is complete first in the text wins
// (smallest end position; at equal ends the one starting earlier), which does not depend on how
// the text was split into deltas.

export type StopMatchResult =
  /** `text` is safe to emit now. */
  | { stopped: false; text: string }
  /** A stop string was found: emit `text` (what preceded it) and end generation. */
  | { stopped: true; text: string; stop: string };

export class StopStringMatcher {
  private readonly stops: string[];
  private readonly longest: number;
  private held = '';
  private done = false;

  constructor(stops: readonly string[]) {
    if (stops.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new Error('stop strings must be non-empty strings');
    }
    this.stops = [...new Set(stops)];
    this.longest = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** Text received but not yet released because it may begin a stop string. */
  get pending(): string {
    return this.held;
  }

  get stopped(): boolean {
    return this.done;
  }

  push(delta: string): StopMatchResult {
    if (this.done) throw new Error('StopStringMatcher.push called after a stop string matched');
    const text = this.held + delta;
    let best: { start: number; end: number; stop: string } | undefined;
    for (const stop of this.stops) {
      const start = text.indexOf(stop);
      if (start === -1) continue;
      const end = start + stop.length;
      if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
    }
    if (best) {
      this.done = true;
      this.held = '';
      return { stopped: true, text: text.slice(0, best.start), stop: best.stop };
    }
    const keep = this.partialStopSuffix(text);
    this.held = text.slice(text.length - keep);
    return { stopped: false, text: text.slice(0, text.length - keep) };
  }

  /** Generation ended without a stop string: everything held back is ordinary text. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    this.done = true;
    return rest;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialStopSuffix(text: string): number {
    for (let k = Math.min(this.longest - 1, text.length); k > 0; k--) {
      const suffix = text.slice(text.length - k);
      if (this.stops.some((s) => s.startsWith(suffix))) return k;
    }
    return 0;
  }
}
