// Sizes a prompt to an exact token count: a lead-in sentence plus as many tokens of body text as
// make the whole prompt (chat template included) `target` tokens long.
import { countPromptTokens, type PromptBody, type PromptTokenizer } from './prompt-tokenizer.ts';

export class PromptFitError extends Error {
  override name = 'PromptFitError';
}

export interface FittedPrompt {
  body: PromptBody;
  /** Prompt tokens as the server will count them (equal to the target unless the tokenizer made that impossible). */
  promptTokens: number;
}

function bodyOf(format: PromptBody['kind'], content: string): PromptBody {
  return format === 'chat' ? { kind: 'chat', messages: [{ role: 'user', content }] } : { kind: 'text', text: content };
}

/**
 * The prompt whose content is `leadIn` followed by the first k tokens of `text`, with k chosen so
 * that the prompt has `target` tokens. Token boundaries can merge when text is cut and re-encoded,
 * so k is corrected a few times; the closest prompt not over the target is kept.
 */
export function fitPrompt(tok: PromptTokenizer, format: PromptBody['kind'], leadIn: string, text: string, target: number): FittedPrompt {
  const textIds = tok.encode(text, { addSpecialTokens: false });
  const build = (k: number) => {
    const body = bodyOf(format, leadIn + tok.decode(textIds.slice(0, k)));
    return { body, promptTokens: countPromptTokens(tok, body) };
  };
  const empty = build(0);
  if (empty.promptTokens > target) {
    throw new PromptFitError(
      `--prompt-tokens ${target} is shorter than the prompt's fixed part (${empty.promptTokens} tokens: template and instruction)`,
    );
  }
  let best = empty;
  let k = Math.min(target - empty.promptTokens, textIds.length);
  for (let attempt = 0; attempt < 8; attempt++) {
    const p = build(k);
    if (p.promptTokens <= target && p.promptTokens > best.promptTokens) best = p;
    if (p.promptTokens === target) return p;
    const next = Math.max(0, Math.min(textIds.length, k + target - p.promptTokens));
    if (next === k) break;
    k = next;
  }
  if (best.promptTokens < target && textIds.length < target) {
    throw new PromptFitError(`the text is too short for ${target} prompt tokens (the longest prompt it makes has ${best.promptTokens})`);
  }
  return best;
}
