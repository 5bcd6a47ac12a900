// Tokenize and Detokenize: the model's tokenizer, exactly as generation uses it.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { TokenizeInput } from '../engine/engine-protocol.ts';
import type {
  DetokenizeRequest,
  DetokenizeResponseSchema,
  TokenizeRequest,
  TokenizeResponseSchema,
} from '../gen/mlxserve/v1/generation_service_pb.ts';
import { invalidArgument, toConnectError } from './request-error.ts';
import { toPromptInput } from './request-mapping.ts';
import type { ServingState } from './serving-state.ts';

function checkVocabulary(field: string, ids: readonly number[], vocabSize: number): void {
  for (const id of ids) {
    if (id < 0 || id >= vocabSize) throw invalidArgument(field, `${field}: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}

export function tokenizeHandler(state: ServingState) {
  return async function tokenize(req: TokenizeRequest): Promise<MessageInitShape<typeof TokenizeResponseSchema>> {
    try {
      const model = state.model(req.model);
      const input = req.prompt?.input;
      // Empty text is a valid thing to tokenize (it has no tokens), unlike a generation prompt.
      if (input?.case === 'text' && input.value.length === 0) return { tokenIds: [], tokenStrings: [] };
      const prompt = toPromptInput(req.prompt, model);
      if (prompt.kind === 'tokens') {
        // Token input is returned as is; its strings come from decoding each token on its own.
        const strings = req.returnTokenStrings
          ? await Promise.all(prompt.tokenIds.map((id) => state.engine.detokenize([id], false)))
          : [];
        return { tokenIds: prompt.tokenIds, tokenStrings: strings };
      }
      const result = await state.engine.tokenize(prompt satisfies TokenizeInput);
      return { tokenIds: result.tokenIds, tokenStrings: req.returnTokenStrings ? result.tokens : [] };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}

export function detokenizeHandler(state: ServingState) {
  return async function detokenize(req: DetokenizeRequest): Promise<MessageInitShape<typeof DetokenizeResponseSchema>> {
    try {
      const model = state.model(req.model);
      checkVocabulary('token_ids', req.tokenIds, model.vocabSize);
      return { text: await state.engine.detokenize([...req.tokenIds], req.skipSpecialTokens) };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}
