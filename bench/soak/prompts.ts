// The soak's requests: short, varied prompts (the bench client's synthetic tasks and text), about
// half of them under one of a few shared system prompts so the prefix cache is used and its locks
// taken and released all the time; small answers; exact-length (ignore_eos) or natural stops.
import type { PromptBody } from '../client/prompt-tokenizer.ts';
import { pick, seededRng, type Rng } from '../client/rng.ts';
import { syntheticTask, syntheticText } from '../client/synthetic-prompts.ts';

export interface SoakRequest {
  body: PromptBody;
  maxTokens: number;
  /** Generate exactly maxTokens (no stop at EOS). */
  ignoreEos: boolean;
}

/** When a cancelled or disconnected request is cut off: after some streamed chunks, or after some time (possibly still queued). */
export type CutPoint = { chunks: number } | { ms: number };

export interface PromptMixOptions {
  minTokens: number;
  maxTokens: number;
  /** Answers that are cut off may ask for this many tokens, so they are still running when cut. */
  cutMaxTokens: number;
}

/** A few system prompts every client shares (fixed, so they are the same on every run). */
const SHARED_SYSTEM_PROMPTS = Array.from({ length: 3 }, (_, i) => {
  const rng = seededRng(9000 + i);
  return `You are a careful assistant. ${syntheticText(rng, 60)} Answer briefly.`;
});

export class PromptMix {
  constructor(
    private readonly rng: Rng,
    private readonly o: PromptMixOptions,
  ) {}

  private between(lo: number, hi: number): number {
    return lo + Math.floor(this.rng() * (hi - lo + 1));
  }

  private userText(): string {
    return `${syntheticTask(this.rng)}\n\n${syntheticText(this.rng, this.between(4, 40))}`;
  }

  chat(): PromptBody {
    const messages = [{ role: 'user', content: this.userText() }];
    if (this.rng() < 0.5) messages.unshift({ role: 'system', content: pick(this.rng, SHARED_SYSTEM_PROMPTS) });
    return { kind: 'chat', messages };
  }

  text(): PromptBody {
    const prefix = this.rng() < 0.5 ? `${pick(this.rng, SHARED_SYSTEM_PROMPTS)}\n\n` : '';
    return { kind: 'text', text: `${prefix}${this.userText()}\n\nAnswer:` };
  }

  /** A request that should run to its end. */
  request(body: PromptBody): SoakRequest {
    return { body, maxTokens: this.between(this.o.minTokens, this.o.maxTokens), ignoreEos: this.rng() < 0.7 };
  }

  /** A request that will be cut off: long enough to be running when it is. */
  cutRequest(body: PromptBody): SoakRequest {
    return { body, maxTokens: this.o.cutMaxTokens, ignoreEos: true };
  }

  /**
   * Mostly a few chunks into the answer; sometimes a moment after sending, which may be while it
   * still waits for a slot. `timeOnly` for answers that are not streamed.
   */
  cutPoint(timeOnly = false): CutPoint {
    return timeOnly || this.rng() < 0.25 ? { ms: this.between(0, 1500) } : { chunks: this.between(1, 8) };
  }
}
