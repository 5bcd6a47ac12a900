// Chat completion choices in OpenAI's shapes: `message` in an answer, `delta` in stream chunks
// (the first carrying the role), logprobs as {content: [...], refusal: null}.
import type { TokenLogprob } from '../gen/mlxserve/v1/generation_pb.ts';
import type { ToolCall } from '../gen/mlxserve/v1/prompt_pb.ts';
import type { ChoiceFormat } from './choice-format.ts';
import { chatLogprobs } from './logprobs-format.ts';

function logprobsField(wanted: boolean, entries: TokenLogprob[]) {
  return wanted ? { content: chatLogprobs(entries), refusal: null } : null;
}

/** A message's tool calls, OpenAI's shape. */
function toolCallsField(calls: readonly ToolCall[]) {
  return calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
}

export function chatFormat(options: { logprobs: boolean }): ChoiceFormat {
  const wanted = options.logprobs;
  /** Tool calls streamed so far, per choice: each call's position in its message's list. */
  const streamedCalls = new Map<number, number>();
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
      if (e.text === '' && e.toolCalls.length === 0 && !(wanted && e.logprobs.length > 0)) return undefined;
      const delta: Record<string, unknown> = { content: e.text };
      if (e.toolCalls.length > 0) {
        // Each call whole in one chunk: its index in the message, id, type, name and arguments
        // (OpenAI's stream may spread the arguments over chunks; clients concatenate them).
        const first = streamedCalls.get(e.index) ?? 0;
        streamedCalls.set(e.index, first + e.toolCalls.length);
        delta.tool_calls = toolCallsField(e.toolCalls).map((c, i) => ({ index: first + i, ...c }));
        if (e.text === '') delta.content = null;
      }
      return { index: e.index, delta, logprobs: logprobsField(wanted, e.logprobs), finish_reason: null };
    },
    finish: (e) => ({ index: e.index, delta: {}, logprobs: null, finish_reason: e.finishReason }),
    choices: (collected) =>
      collected.map((c) => ({
        index: c.index,
        message: {
          role: 'assistant',
          // OpenAI's answer to a call has no text: content is null then.
          content: c.toolCalls.length > 0 && c.text === '' ? null : c.text,
          refusal: null,
          annotations: [],
          ...(c.toolCalls.length > 0 ? { tool_calls: toolCallsField(c.toolCalls) } : {}),
        },
        logprobs: logprobsField(wanted, c.logprobs),
        finish_reason: c.finishReason,
      })),
  };
}
