// Legacy completion choices in OpenAI's shape: `text`, with logprobs as parallel arrays whose
// text_offset counts characters from the start of the choice's text (the echoed prompt included).
import type { ChoiceFormat } from './choice-format.ts';
import { charLength, completionLogprobs, TextCursor } from './logprobs-format.ts';

export interface CompletionFormatOptions {
  logprobs: boolean;
  /** The text to echo before each prompt's choices, by prompt index; undefined: no echo. */
  echoTexts?: string[];
  /** Choices per prompt, to find a choice's prompt. */
  n: number;
}

export function completionFormat(options: CompletionFormatOptions): ChoiceFormat {
  const echoOf = (index: number) => options.echoTexts?.[Math.floor(index / options.n)] ?? '';
  // Where each choice's next token starts, for text_offset (a stream formats a choice piecewise).
  const cursors = new Map<number, TextCursor>();
  const logprobsFor = (index: number, entries: Parameters<typeof completionLogprobs>[0]) => {
    if (!options.logprobs) return null;
    let cursor = cursors.get(index);
    if (!cursor) cursors.set(index, (cursor = new TextCursor(charLength(echoOf(index)))));
    return completionLogprobs(entries, cursor);
  };
  return {
    object: 'text_completion',
    chunkObject: 'text_completion',
    idPrefix: 'cmpl-',
    opening: (choice) => {
      const echo = echoOf(choice.index);
      return echo ? [{ index: choice.index, text: echo, logprobs: null, finish_reason: null }] : [];
    },
    delta(e) {
      if (e.text === '' && !(options.logprobs && e.logprobs.length > 0)) return undefined;
      return { index: e.index, text: e.text, logprobs: logprobsFor(e.index, e.logprobs), finish_reason: null };
    },
    finish: (e) => ({ index: e.index, text: '', logprobs: null, finish_reason: e.finishReason }),
    choices: (collected) =>
      collected.map((c) => ({
        index: c.index,
        text: echoOf(c.index) + c.text,
        logprobs: logprobsFor(c.index, c.logprobs),
        finish_reason: c.finishReason,
      })),
  };
}
