// Chat completion choices in OpenAI's shapes: `message` in an answer, `delta` in stream chunks
// (the first carrying the role), logprobs as {content: [...], refusal: null}.
import type { TokenLogprob } from '../gen/mlxserve/v1/generation_pb.ts';
import type { ChoiceFormat } from './choice-format.ts';
import { chatLogprobs } from './logprobs-format.ts';

function logprobsField(wanted: boolean, entries: TokenLogprob[]) {
  return wanted ? { content: chatLogprobs(entries), refusal: null } : null;
}

export function chatFormat(options: { logprobs: boolean }): ChoiceFormat {
  const wanted = options.logprobs;
  return {
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    idPrefix: 'chatcmpl-',
    opening: (choice) => [
      { index: choice.index, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null },
    ],
    delta(e) {
      // A delta whose text is still pending (part of a character, a possible stop string) is
      // worth sending only for its logprobs.
      if (e.text === '' && !(wanted && e.logprobs.length > 0)) return undefined;
      return { index: e.index, delta: { content: e.text }, logprobs: logprobsField(wanted, e.logprobs), finish_reason: null };
    },
    finish: (e) => ({ index: e.index, delta: {}, logprobs: null, finish_reason: e.finishReason }),
    choices: (collected) =>
      collected.map((c) => ({
        index: c.index,
        message: { role: 'assistant', content: c.text, refusal: null, annotations: [] },
        logprobs: logprobsField(wanted, c.logprobs),
        finish_reason: c.finishReason,
      })),
  };
}
