// vLLM's POST /v1/load_lora_adapter and /v1/unload_lora_adapter: every field lora-endpoints.ts reads.
import { acceptedAndIgnored, type BodySchema, notSupported } from './body-schema.ts';

export const LOAD_LORA_ADAPTER_BODY: BodySchema = {
  title: 'LoadLoRAAdapterRequest',
  type: 'object',
  examples: [{ lora_name: 'sql', lora_path: '/models/adapters/sql-lora' }],
  required: ['lora_name', 'lora_path'],
  properties: {
    lora_name: { type: 'string', minLength: 1, description: 'The name requests use in `model`.' },
    lora_path: { type: 'string', minLength: 1, description: 'A PEFT adapter directory (adapter_config.json and weights) on the server.' },
    load_inplace: notSupported({ type: 'boolean' }, 'replacing a loaded adapter; unload it first (false is accepted).'),
  },
};

export const UNLOAD_LORA_ADAPTER_BODY: BodySchema = {
  title: 'UnloadLoRAAdapterRequest',
  type: 'object',
  examples: [{ lora_name: 'sql' }],
  required: ['lora_name'],
  properties: {
    lora_name: { type: 'string', minLength: 1 },
    lora_int_id: acceptedAndIgnored({ type: 'integer' }, 'names identify adapters here.'),
  },
};
