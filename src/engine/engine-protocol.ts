// Messages between the server process and the engine process (Node IPC, JSON).
import type { EngineOptions } from './engine-options.ts';
import type { ModelLocation } from './load-model.ts';
import type { ChatMessage, EngineEvent, EngineStats, GenerateRequest, ModelInfo } from './request.ts';

export interface EngineProcessConfig {
  model: ModelLocation;
  cacheDir: string;
  engine: EngineOptions;
}

export type TokenizeInput = { kind: 'text'; text: string; addSpecialTokens?: boolean } | { kind: 'chat'; messages: ChatMessage[]; addGenerationPrompt?: boolean };

/** Server → engine. */
export type ToEngine =
  | { type: 'init'; config: EngineProcessConfig }
  | { type: 'submit'; request: GenerateRequest }
  | { type: 'cancel'; requestId: string }
  | { type: 'tokenize'; callId: number; input: TokenizeInput }
  | { type: 'detokenize'; callId: number; tokenIds: number[]; skipSpecialTokens?: boolean }
  | { type: 'stats'; callId: number }
  | { type: 'shutdown' };

export interface TokenizeResult {
  tokenIds: number[];
  tokens: string[];
}

/** Engine → server. */
export type FromEngine =
  | { type: 'progress'; done: number; total: number }
  | { type: 'ready'; info: ModelInfo }
  | { type: 'fatal'; message: string }
  | { type: 'events'; events: EngineEvent[] }
  | { type: 'reply'; callId: number; ok: true; value: TokenizeResult | string | EngineStats }
  | { type: 'reply'; callId: number; ok: false; message: string; field?: string };
