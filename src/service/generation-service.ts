// mlxserve.v1.GenerationService: each RPC's handler over the shared serving state.
import type { ServiceImpl } from '@connectrpc/connect';
import { GenerationService } from '../gen/mlxserve/v1/generation_service_pb.ts';
import { loadAdapterHandler, unloadAdapterHandler } from './adapter-handlers.ts';
import { generateHandler } from './generate-session.ts';
import type { ServingState } from './serving-state.ts';
import { completeHandler, generateStreamHandler } from './single-request.ts';
import { listModelsHandler, serverStatusHandler } from './status-handlers.ts';
import { detokenizeHandler, tokenizeHandler } from './tokenizer-handlers.ts';

export { GenerationService };

export function generationService(state: ServingState): ServiceImpl<typeof GenerationService> {
  return {
    generate: generateHandler(state),
    generateStream: generateStreamHandler(state),
    complete: completeHandler(state),
    tokenize: tokenizeHandler(state),
    detokenize: detokenizeHandler(state),
    listModels: listModelsHandler(state),
    getServerStatus: serverStatusHandler(state),
    loadAdapter: loadAdapterHandler(state),
    unloadAdapter: unloadAdapterHandler(state),
  };
}
