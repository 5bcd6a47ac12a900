// OpenAI's `usage` object for a request of several choices: each prompt's tokens count once (as
// OpenAI counts a prompt once however many choices it has), completion tokens add up over all
// choices, and cached_tokens tells how much of the prompt the prefix cache served.
import type { Usage } from '../gen/mlxserve/v1/generation_pb.ts';

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface ChoiceUsage {
  promptIndex: number;
  usage: Usage;
}

export function openAIUsage(choices: ChoiceUsage[]): OpenAIUsage {
  const perPrompt = new Map<number, Usage>();
  let completion = 0;
  for (const c of choices) {
    // The first choice of a prompt stands for its prompt (later ones may find it cached).
    if (!perPrompt.has(c.promptIndex)) perPrompt.set(c.promptIndex, c.usage);
    completion += c.usage.completionTokens;
  }
  let prompt = 0;
  let cached = 0;
  for (const u of perPrompt.values()) {
    prompt += u.promptTokens;
    cached += u.cachedTokens;
  }
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}
