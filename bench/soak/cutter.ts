// Cuts a request off (cancel or disconnect) at its cut point: after so many streamed chunks that
// carry tokens, or after so many milliseconds from sending, whichever the point names.
import type { CutPoint } from './prompts.ts';

export class Cutter {
  private chunks = 0;
  private readonly timer?: NodeJS.Timeout;
  /** Whether the request was cut off. */
  fired = false;

  constructor(
    private readonly point: CutPoint,
    private readonly cut: () => void,
  ) {
    if ('ms' in point) this.timer = setTimeout(() => this.fire(), point.ms);
  }

  /** A chunk with generated tokens arrived. */
  chunk(): void {
    if ('chunks' in this.point && ++this.chunks >= this.point.chunks) this.fire();
  }

  fire(): void {
    if (this.fired) return;
    this.fired = true;
    clearTimeout(this.timer);
    this.cut();
  }

  /** The request ended: no cut any more. */
  done(): void {
    clearTimeout(this.timer);
  }
}
