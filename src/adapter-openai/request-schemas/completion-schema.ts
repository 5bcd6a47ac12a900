// POST /v1/completions: every field completion-request.ts reads.
import { type BodySchema, notSupported } from './body-schema.ts';
import { MODEL_PROPERTY, SAMPLING_PROPERTIES, STRUCTURED_OUTPUT_PROPERTIES } from './sampling-schema.ts';

const tokenIds = { type: 'array', items: { type: 'integer' }, minItems: 1 } as const;

export const COMPLETION_BODY: BodySchema = {
  title: 'CompletionRequest',
  type: 'object',
  examples: [{ model: 'default', prompt: 'The capital of France is', max_tokens: 8 }],
  required: ['prompt'],
  properties: {
    model: MODEL_PROPERTY,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' }, minItems: 1 },
        tokenIds,
        { type: 'array', items: tokenIds, minItems: 1 },
      ],
      description: 'A string, strings, token ids, or lists of token ids; each prompt gets n choices.',
    },
    max_tokens: {
      type: ['integer', 'null'],
      minimum: 1,
      default: 16,
      description: 'Most tokens to generate; null: what the context leaves.',
    },
    logprobs: { type: 'integer', minimum: 0, maximum: 20, description: 'Return log probabilities with this many alternatives per token.' },
    echo: { type: 'boolean', default: false, description: 'Prepend the prompt to the text (not with logprobs).' },
    best_of: notSupported({ type: 'integer' }, "ranking candidates (a value equal to 'n' is accepted)."),
    suffix: notSupported({ type: 'string' }, 'insertion ("" is accepted).'),
    min_tokens: notSupported({ type: 'integer' }, 'a minimum output length (0 is accepted).'),
    include_stop_str_in_output: notSupported({ type: 'boolean' }, 'the stop string is never part of the output (false is accepted).'),
    ...SAMPLING_PROPERTIES,
    ...STRUCTURED_OUTPUT_PROPERTIES,
  },
};
