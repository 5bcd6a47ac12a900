// vLLM's runtime LoRA routes: POST /v1/load_lora_adapter {lora_name, lora_path} and POST
// /v1/unload_lora_adapter {lora_name}, answered as vLLM answers them (200 with a plain-text
// sentence), over the service's LoadAdapter and UnloadAdapter. Refusals are OpenAI error bodies
// that name the parameter as the client sent it (lora_name, lora_path).
import { Code, ConnectError } from '@connectrpc/connect';
import type { ServerResponse } from 'node:http';
import { GenerationErrorSchema } from '../gen/mlxserve/v1/generation_pb.ts';
import { errorFromThrown, type ParamNames } from './grpc-error.ts';
import { invalidRequest, OpenAIError } from './openai-error.ts';
import { RequestBody } from './request-body.ts';
import { LOAD_LORA_ADAPTER_BODY, UNLOAD_LORA_ADAPTER_BODY } from './request-schemas/lora-schema.ts';
import type { GenerationClient } from './service-connection.ts';

export interface LoraCall {
  signal: AbortSignal;
  headers: Record<string, string>;
}

/** A required, non-empty string field. */
function requiredString(body: RequestBody, param: string): string {
  const v = body.string(param);
  if (v === undefined) throw invalidRequest(param, `Missing required parameter: '${param}'.`, 'missing_required_parameter');
  if (v.length === 0) throw invalidRequest(param, `Invalid '${param}': must not be empty.`, 'empty_string');
  return v;
}

/** The REST parameter a LoadAdapter / UnloadAdapter request field stands for. */
const PARAMS: Record<string, string> = { name: 'lora_name', path: 'lora_path' };

const NAMES: ParamNames = { prompt: 'prompt', maxTokens: 'max_tokens', topLogprobs: 'top_logprobs', model: 'lora_name' };

/** The service's refusal, worded for this API (vLLM's sentences for a name loaded twice or not loaded). */
function loraError(err: unknown, name: string): OpenAIError {
  if (err instanceof OpenAIError) return err;
  const ce = ConnectError.from(err);
  const detail = ce.findDetails(GenerationErrorSchema)[0];
  switch (ce.code) {
    case Code.AlreadyExists:
      return invalidRequest('lora_name', `The lora adapter '${name}' has already been loaded.`);
    case Code.NotFound:
      return new OpenAIError(404, `The lora adapter '${name}' cannot be found.`, 'invalid_request_error', 'lora_name', 'model_not_found');
    case Code.InvalidArgument: {
      const param = PARAMS[detail?.field ?? ''] ?? null;
      const message = param && detail?.reason ? param + detail.reason : detail?.message || ce.rawMessage;
      return invalidRequest(param, message);
    }
    default:
      return errorFromThrown(err, NAMES);
  }
}

function sendText(res: ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function readLoadAdapterBody(body: RequestBody): { name: string; path: string } {
  const name = requiredString(body, 'lora_name');
  const path = requiredString(body, 'lora_path');
  body.unsupported('load_inplace', 'unload the adapter first, then load it again', (v) => v === false);
  return { name, path };
}

export function readUnloadAdapterBody(body: RequestBody): { name: string } {
  const name = requiredString(body, 'lora_name');
  // vLLM's numeric id of an adapter; names are what identify adapters here.
  body.ignore('lora_int_id');
  return { name };
}

export async function loadLoraAdapter(client: GenerationClient, json: unknown, res: ServerResponse, call: LoraCall): Promise<void> {
  const { name, path } = readLoadAdapterBody(RequestBody.from(json, LOAD_LORA_ADAPTER_BODY));
  try {
    await client.loadAdapter({ name, path }, call);
  } catch (err) {
    throw loraError(err, name);
  }
  sendText(res, `Success: LoRA adapter '${name}' added successfully.`);
}

export async function unloadLoraAdapter(client: GenerationClient, json: unknown, res: ServerResponse, call: LoraCall): Promise<void> {
  const { name } = readUnloadAdapterBody(RequestBody.from(json, UNLOAD_LORA_ADAPTER_BODY));
  try {
    await client.unloadAdapter({ name }, call);
  } catch (err) {
    throw loraError(err, name);
  }
  sendText(res, `Success: LoRA adapter '${name}' removed successfully.`);
}
