// The tokenizer the client sizes prompts with: the model's own (from a GGUF or a Hugging Face
// directory, as the server loads it), so "--prompt-tokens 128" means 128 tokens to every server
// that serves the same model.
import { readGguf } from '../../src/engine/gguf.ts';
import { defaultCacheDir, resolveModel } from '../../src/model-source/model-source.ts';
import type { ChatMessage } from '../../src/text/generation.ts';
import { Tokenizer } from '../../src/text/tokenizer.ts';

/** What a prompt is sent as: chat messages (rendered by the server's template) or raw text. */
export type PromptBody = { kind: 'chat'; messages: ChatMessage[] } | { kind: 'text'; text: string };

export interface PromptTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[]): string;
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
  /** Ids that end generation (what "ignore EOS" must suppress on servers without ignore_eos). */
  readonly eosTokenIds: number[];
}

/** Prompt tokens the server computes for a body (chat: template rendered, no extra BOS; text: with BOS as configured). */
export function countPromptTokens(tok: PromptTokenizer, body: PromptBody): number {
  if (body.kind === 'chat')
    return tok.encode(tok.applyChatTemplate(body.messages, { addGenerationPrompt: true }), { addSpecialTokens: false }).length;
  return tok.encode(body.text, { addSpecialTokens: true }).length;
}

/** Loads the tokenizer of a model spec (local GGUF or HF directory, hub id, or undefined for the default model). */
export async function loadPromptTokenizer(spec: string | undefined, cacheDir = defaultCacheDir()): Promise<PromptTokenizer> {
  const model = await resolveModel(spec, { cacheDir });
  if (model.format === 'gguf') return Tokenizer.fromGguf((await readGguf(model.path)).metadata);
  return Tokenizer.fromHfDirectory(model.path);
}
