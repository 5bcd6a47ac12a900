// How an endpoint shapes its choices: the `choices` entries of stream chunks and the body of a
// non-streamed answer. The chat and completions endpoints each provide one; the framing around
// them (ids, created, model, usage, SSE) is shared.
import type { ChoiceEvent, CollectedChoice, OpenedChoice } from './choice-runner.ts';

export type ChoiceEntry = Record<string, unknown>;

export interface ChoiceFormat {
  /** `object` of a non-streamed answer ("chat.completion", "text_completion"). */
  readonly object: string;
  /** `object` of a stream chunk ("chat.completion.chunk", "text_completion"). */
  readonly chunkObject: string;
  /** Prefix of the response id ("chatcmpl-", "cmpl-"). */
  readonly idPrefix: string;
  /** Entries sent for a choice before its first tokens (the chat role, an echoed prompt). */
  opening(choice: OpenedChoice): ChoiceEntry[];
  /** The entry for new tokens, or undefined when there is nothing to send yet. */
  delta(event: Extract<ChoiceEvent, { type: 'delta' }>): ChoiceEntry | undefined;
  /** The entry that ends a choice. */
  finish(event: Extract<ChoiceEvent, { type: 'finished' }>): ChoiceEntry;
  /** The `choices` of a non-streamed answer. */
  choices(collected: CollectedChoice[]): ChoiceEntry[];
}
