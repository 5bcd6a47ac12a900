// The served model as the service describes it: what the engine loaded, and what the tokenizer
// (the server's) says about ends of sequences and chat.
import type { EngineModelInfo } from '../engine/request.ts';
import type { Tokenizer } from '../text/tokenizer.ts';

export interface ModelInfo extends EngineModelInfo {
  eosTokenIds: number[];
  bosTokenId?: number;
  hasChatTemplate: boolean;
}

export function modelInfo(engine: EngineModelInfo, tokenizer: Tokenizer): ModelInfo {
  return { ...engine, eosTokenIds: tokenizer.eosTokenIds, bosTokenId: tokenizer.bosTokenId, hasChatTemplate: tokenizer.hasChatTemplate };
}
