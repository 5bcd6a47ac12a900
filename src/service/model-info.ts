// The served model as the service describes it: what the engine loaded, what the tokenizer (the
// server's) says about ends of sequences and chat, and what the server was told beyond the
// model's files: more names for it, and its sampling defaults.
import type { EngineModelInfo } from '../engine/request.ts';
import type { GenerationDefaults } from '../text/generation-config.ts';
import type { Tokenizer } from '../text/tokenizer.ts';

/** What the server adds to the model's files. */
export interface ServedModel {
  /** More names requests may give in `model` (--served-model-name after the first, which is the id). */
  aliases: readonly string[];
  /** Defaults of the sampling fields a request leaves unset, before the built-in ones (generation_config.json). */
  samplingDefaults: GenerationDefaults;
}

export const PLAIN_SERVED_MODEL: ServedModel = { aliases: [], samplingDefaults: {} };

export interface ModelInfo extends EngineModelInfo, ServedModel {
  eosTokenIds: number[];
  bosTokenId?: number;
  hasChatTemplate: boolean;
}

export function modelInfo(engine: EngineModelInfo, tokenizer: Tokenizer, served: ServedModel = PLAIN_SERVED_MODEL): ModelInfo {
  return {
    ...engine,
    ...served,
    eosTokenIds: tokenizer.eosTokenIds,
    bosTokenId: tokenizer.bosTokenId,
    hasChatTemplate: tokenizer.hasChatTemplate,
  };
}

/** The name of the server's default model whatever its id, as the REST API (and vLLM's users) use it. */
export const DEFAULT_MODEL_NAME = 'default';

/** Whether a request's `model` names this model, the default one: its id, an alias, or "default". */
export function namesModel(info: ModelInfo, name: string): boolean {
  return name === info.id || name === DEFAULT_MODEL_NAME || info.aliases.includes(name);
}
