// Tokenize and Detokenize: the model's tokenizer, exactly as generation uses it. The server holds
// it, so these answer at once whatever the engine is doing.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type {
  DetokenizeRequest,
  DetokenizeResponseSchema,
  TokenizeRequest,
  TokenizeResponseSchema,
} from '../gen/mlxserve/v1/generation_service_pb.ts';
import { promptText } from '../text/prompt-tokens.ts';
import { toConnectError } from './request-error.ts';
import { checkTokenIds, toPromptInput } from './request-mapping.ts';
import type { ServingState } from './serving-state.ts';

export function tokenizeHandler(state: ServingState) {
  return async function tokenize(req: TokenizeRequest): Promise<MessageInitShape<typeof TokenizeResponseSchema>> {
    try {
      const model = state.model(req.model);
      const pool = state.tokenizer();
      const tokenizer = pool.tokenizer;
      const input = req.prompt?.input;
      // Empty text is a valid thing to tokenize (it has no tokens), unlike a generation prompt.
      if (input?.case === 'text' && input.value.length === 0) return { tokenIds: [], tokenStrings: [] };
      const prompt = toPromptInput(req.prompt, model);
      const p = promptText(tokenizer, prompt, model);
      // Token input is returned as is; its strings come from decoding each token on its own.
      const tokenIds = 'tokenIds' in p ? p.tokenIds : await pool.encode(p.text, { addSpecialTokens: p.addSpecialTokens });
      const tokenStrings = !req.returnTokenStrings
        ? []
        : 'tokenIds' in p
          ? tokenIds.map((id) => tokenizer.decode([id], { skipSpecialTokens: false }))
          : tokenIds.map((id) => tokenizer.tokenText(id));
      return { tokenIds, tokenStrings };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}

export function detokenizeHandler(state: ServingState) {
  return async function detokenize(req: DetokenizeRequest): Promise<MessageInitShape<typeof DetokenizeResponseSchema>> {
    try {
      const model = state.model(req.model);
      checkTokenIds('token_ids', req.tokenIds, model.vocabSize);
      return { text: state.tokenizer().tokenizer.decode([...req.tokenIds], { skipSpecialTokens: req.skipSpecialTokens }) };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}
