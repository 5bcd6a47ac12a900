// Renders a model's Jinja chat template the way transformers' apply_chat_template does (same
// variables: messages, add_generation_prompt, the special token strings, raise_exception), with
// @huggingface/jinja. Every failure is the request's fault or the template's refusal, so it is
// reported as an invalid `messages` argument.
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from './generation.ts';
import type { TemplateMessage, ToolDefinition } from './tool-calls/tool-types.ts';
import { InvalidArgumentError } from '../engine/sampling-params.ts';

export const CHAT_ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** Checks the shape of chat messages before they reach a template; names the first bad field. */
export function validateChatMessages(messages: unknown): asserts messages is (ChatMessage | TemplateMessage)[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw InvalidArgumentError.ofField('messages', ' must be a non-empty list');
  }
  messages.forEach((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw InvalidArgumentError.ofField('messages', `[${i}] must be an object with role and content`);
    }
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !CHAT_ROLES.has(role)) {
      throw InvalidArgumentError.ofField(
        'messages',
        `[${i}].role must be one of ${[...CHAT_ROLES].join(', ')}, got ${JSON.stringify(role)}`,
      );
    }
    if (typeof content !== 'string') {
      throw InvalidArgumentError.ofField('messages', `[${i}].content must be a string`);
    }
  });
}

export class ChatTemplate {
  private readonly template: Template;

  /** Throws (a plain Error) when the template does not parse. */
  constructor(
    readonly source: string,
    /** bos_token, eos_token, unk_token, pad_token as the template sees them. */
    private readonly specialTokens: Record<string, string>,
  ) {
    this.template = new Template(source);
  }

  /** `tools`: passed to the template as transformers passes them ([{type: 'function', function}]). */
  render(messages: TemplateMessage[], opts: { addGenerationPrompt: boolean; tools?: readonly ToolDefinition[] }): string {
    validateChatMessages(messages);
    let text: unknown;
    try {
      text = this.template.render({
        ...this.specialTokens,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: opts.addGenerationPrompt,
        ...(opts.tools?.length ? { tools: opts.tools.map((f) => ({ type: 'function', function: f })) } : {}),
      });
    } catch (err) {
      // @huggingface/jinja provides raise_exception(); it throws a plain Error with the template's message.
      throw new InvalidArgumentError('messages', `the chat template rejected these messages: ${(err as Error).message}`);
    }
    if (typeof text !== 'string') throw new InvalidArgumentError('messages', 'the chat template did not produce text');
    return text;
  }
}
