// GET /v1/models and GET /v1/models/{id}: the service's models as OpenAI model objects, with
// vLLM's extras that clients of vLLM read: max_model_len (the context length the server
// enforces), and `root` and `parent` (for a LoRA adapter: its directory and its base model's id).
// A model is listed under its id (the first --served-model-name); its aliases find it too.
import type { ModelInfo } from '../gen/mlxserve/v1/generation_service_pb.ts';
import { DEFAULT_MODEL_ALIASES } from './generation-plan.ts';
import { modelNotFound } from './openai-error.ts';
import type { GenerationClient } from './service-connection.ts';

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** The base model's id, or a LoRA adapter's directory. */
  root: string;
  /** A LoRA adapter's base model; null for the base model. */
  parent: string | null;
  max_model_len: number;
}

export function openAIModel(m: ModelInfo): OpenAIModel {
  return {
    id: m.id,
    object: 'model',
    created: Number(m.created?.seconds ?? 0n),
    owned_by: m.ownedBy || 'mlx-batch-server',
    root: m.adapter?.path ?? m.id,
    parent: m.parent ?? null,
    max_model_len: m.contextLength,
  };
}

export async function listModels(client: GenerationClient, signal: AbortSignal): Promise<{ object: 'list'; data: OpenAIModel[] }> {
  const { models } = await client.listModels({}, { signal });
  return { object: 'list', data: models.map(openAIModel) };
}

/** One model by id or alias (--served-model-name); the default-model aliases name the default model. */
export async function retrieveModel(client: GenerationClient, id: string, signal: AbortSignal): Promise<OpenAIModel> {
  const { models } = await client.listModels({}, { signal });
  const found = DEFAULT_MODEL_ALIASES.has(id)
    ? (models.find((m) => m.isDefault) ?? models[0])
    : models.find((m) => m.id === id || m.aliases.includes(id));
  if (!found) throw modelNotFound(id);
  return openAIModel(found);
}
