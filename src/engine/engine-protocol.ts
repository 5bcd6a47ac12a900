// Messages between the server process and the engine process (Node IPC, JSON). Token ids only:
// text never crosses this boundary. Dependency-free, so the server can import it without MLX.
import type { EngineOptions } from './engine-options.ts';
import type { GrammarVocabulary } from './grammar/grammar-vocabulary.ts';
import type { AdapterInfo, EngineEvent, EngineModelInfo, EngineRequest, EngineStats, ErrorCode } from './request.ts';

/** A model on local disk, as the engine loads it. */
export interface ModelLocation {
  /** Name clients use for the model. */
  id: string;
  format: 'gguf' | 'hf';
  /** The GGUF file, or the directory. */
  path: string;
}

export interface EngineProcessConfig {
  model: ModelLocation;
  cacheDir: string;
  engine: EngineOptions;
}

/** Server → engine. */
export type ToEngine =
  | { type: 'init'; config: EngineProcessConfig }
  | { type: 'submit'; request: EngineRequest }
  | { type: 'cancel'; requestId: string }
  /** The vocabulary for structured output's grammars (the server has the tokenizer); sent once after start. */
  | { type: 'grammar-vocabulary'; vocabulary: GrammarVocabulary }
  /** Reads a LoRA adapter and serves it under `name`; answered by 'adapter-result' with the same callId. */
  | { type: 'load-adapter'; callId: number; name: string; path: string }
  /** Stops serving an adapter; answered once the requests using it have finished. */
  | { type: 'unload-adapter'; callId: number; name: string }
  | { type: 'shutdown' };

/** Engine → server. */
export type FromEngine =
  | { type: 'progress'; done: number; total: number }
  | { type: 'ready'; info: EngineModelInfo }
  | { type: 'fatal'; message: string }
  /** A step's events, with the engine's figures after it. */
  | { type: 'events'; events: EngineEvent[]; stats?: EngineStats }
  /** The engine's figures after a step without events, on a new request, and when it goes idle. */
  | { type: 'stats'; stats: EngineStats }
  /** The answer to a load-adapter or unload-adapter: the adapters served after it, or why it failed. */
  | { type: 'adapter-result'; callId: number; adapters: AdapterInfo[]; error?: { code: AdapterErrorCode; message: string } };

/** Why loading or unloading an adapter failed. */
export type AdapterErrorCode = Extract<ErrorCode, 'invalid_argument' | 'not_found' | 'already_exists' | 'internal'>;
