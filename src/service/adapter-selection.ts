// Which model a request runs on: the base model, or one of the LoRA adapters the engine serves.
// As in vLLM, an adapter is named in `model` like a model of its own; the gRPC requests may name it
// in `adapter` instead, with `model` then unset, the base model or the same adapter. Adapter names
// share one namespace with the base model's names, so a name never means two things.
import type { AdapterInfo } from '../engine/request.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import { DEFAULT_MODEL_NAME, namesModel, type ModelInfo } from './model-info.ts';
import { invalidArgument, invalidField, RequestError } from './request-error.ts';

/** What a request runs on. */
export interface ModelSelection {
  /** The base model (an adapter runs on it and shares its tokenizer, context and vocabulary). */
  model: ModelInfo;
  /** The adapter, when one is selected. */
  adapter?: AdapterInfo;
  /** The id responses report: the adapter's name, or the base model's id. */
  id: string;
}

/** The longest adapter name, as a request id: names travel in every request and log line. */
export const MAX_ADAPTER_NAME_BYTES = 256;

/** A name as messages quote it: long ones cut. */
export function shown(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}…` : name;
}

function notFound(what: string, name: string, model: ModelInfo, adapters: readonly AdapterInfo[]): RequestError {
  const served = [model.id, ...adapters.map((a) => a.name)].map((n) => `"${n}"`).join(', ');
  return new RequestError(ErrorCode.NOT_FOUND, `${what} "${shown(name)}" not found; this server serves ${served}`);
}

/**
 * The model and adapter that `model` and `adapter` (either may be unset or '') select. Throws
 * NOT_FOUND for a name the server does not serve, INVALID_ARGUMENT when the two disagree.
 */
export function selectModel(
  model: ModelInfo,
  adapters: readonly AdapterInfo[],
  modelName: string | undefined,
  adapterName: string | undefined,
): ModelSelection {
  const byName = (name: string) => adapters.find((a) => a.name === name);
  if (adapterName) {
    const adapter = byName(adapterName);
    if (!adapter) throw notFound('adapter', adapterName, model, adapters);
    if (modelName && modelName !== adapterName && !namesModel(model, modelName)) {
      throw invalidArgument(
        'model',
        `model "${shown(modelName)}" does not go with adapter "${shown(adapterName)}": give the base model ("${model.id}"), the same adapter, or no model`,
      );
    }
    return { model, adapter, id: adapter.name };
  }
  if (!modelName || namesModel(model, modelName)) return { model, id: model.id };
  const adapter = byName(modelName);
  if (!adapter) throw notFound('model', modelName, model, adapters);
  return { model, adapter, id: adapter.name };
}

/**
 * Checks a name an adapter is to be served under: non-empty, not too long, and not one of the
 * base model's names (its id, an alias or "default"), which select the base model.
 */
export function checkAdapterName(name: string, model: Pick<ModelInfo, 'id' | 'aliases'>, field = 'name'): void {
  if (name.length === 0) throw invalidField(field, ' must not be empty');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_ADAPTER_NAME_BYTES) throw invalidField(field, ` must be at most ${MAX_ADAPTER_NAME_BYTES} bytes, got ${bytes}`);
  if (name === model.id || name === DEFAULT_MODEL_NAME || model.aliases.includes(name)) {
    throw invalidField(field, ` "${shown(name)}" is a name of the base model; choose another name for the adapter`);
  }
}
