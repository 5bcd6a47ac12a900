// A request refused or failed, as the contract reports it: an ErrorCode (numbered as the gRPC
// status codes), a message for people and, for INVALID_ARGUMENT, the offending request field as
// its snake_case path (`sampling.top_p`). The multiplexed stream sends it as a GenerationError
// event; the single-request RPCs end the call with the matching status, the GenerationError in
// its details.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type Code, ConnectError } from '@connectrpc/connect';
import { EngineUnavailableError } from '../engine/engine-client.ts';
import type { ErrorCode as EngineErrorCode } from '../engine/request.ts';
import { InvalidArgumentError } from '../engine/sampling-params.ts';
import { ErrorCode, GenerationErrorSchema } from '../gen/mlxserve/v1/generation_pb.ts';

/**
 * The longest message a request error carries (longer ones, which quote a client's value, are
 * cut). A call's status travels in its trailers (grpc-message, and the GenerationError in
 * grpc-status-details-bin); a header block over the peer's frame limit would break the stream
 * instead of failing the call.
 */
const MAX_MESSAGE_CHARS = 1024;

export class RequestError extends Error {
  override name = 'RequestError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The offending request field for INVALID_ARGUMENT (e.g. `sampling.top_p`); empty otherwise. */
    readonly field = '',
    /** When the message is `field` followed by more: that rest (see GenerationError.reason). */
    readonly reason = '',
  ) {
    super(message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message);
  }

  toProto(): MessageInitShape<typeof GenerationErrorSchema> {
    return { code: this.code, message: this.message, field: this.field, reason: this.reason };
  }

  /** The status a single-request call ends with: same code and message, the GenerationError in its details. */
  toConnectError(): ConnectError {
    return new ConnectError(this.message, this.code as number as Code, undefined, [
      { desc: GenerationErrorSchema, value: create(GenerationErrorSchema, this.toProto()) },
    ]);
  }
}

export function invalidArgument(field: string, message: string): RequestError {
  return new RequestError(ErrorCode.INVALID_ARGUMENT, message, field);
}

/** INVALID_ARGUMENT with the message `field` + `reason` ("sampling.top_p" + " must be …"). */
export function invalidField(field: string, reason: string): RequestError {
  return new RequestError(ErrorCode.INVALID_ARGUMENT, field + reason, field, reason);
}

const ENGINE_CODES: Record<EngineErrorCode, ErrorCode> = {
  invalid_argument: ErrorCode.INVALID_ARGUMENT,
  resource_exhausted: ErrorCode.RESOURCE_EXHAUSTED,
  unavailable: ErrorCode.UNAVAILABLE,
  internal: ErrorCode.INTERNAL,
  already_exists: ErrorCode.ALREADY_EXISTS,
  not_found: ErrorCode.NOT_FOUND,
};

/** The engine validates sampling parameters under their own names. */
const SAMPLING_FIELDS = new Set([
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'seed',
  'repetition_penalty',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'max_tokens',
  'stop',
  'stop_token_ids',
  'ignore_eos',
  'logprobs',
  'top_logprobs',
  // structured_output's cases
  'json_schema',
  'regex',
  'choice',
  'grammar',
  'json_object',
]);

/** The engine's names for prompt fields, as paths in the gRPC requests. */
const PROMPT_FIELDS: Record<string, string> = {
  input: 'prompt',
  prompt: 'prompt',
  text: 'prompt.text',
  messages: 'prompt.chat.messages',
  prompt_token_ids: 'prompt.tokens.ids',
  // The grammar of tool calls is built from the tools (a schema that does not compile is theirs).
  structural_tag: 'prompt.chat.tools',
  tools: 'prompt.chat.tools',
  tool_choice: 'prompt.chat.tool_choice',
};

/** The request-field path of a field the engine named. */
export function fieldPath(engineField: string): string {
  if (SAMPLING_FIELDS.has(engineField)) return `sampling.${engineField}`;
  return PROMPT_FIELDS[engineField] ?? engineField;
}

/** The error under the field's request path: reworded with it when the message leads with the field. */
export function fromInvalidArgument(e: InvalidArgumentError): RequestError {
  const path = fieldPath(e.field);
  return e.reason === undefined ? invalidArgument(path, e.message) : invalidField(path, e.reason);
}

export function fromEngineError(e: { code: EngineErrorCode; message: string; field?: string; reason?: string }): RequestError {
  if (e.code === 'invalid_argument' && e.field) return fromInvalidArgument(new InvalidArgumentError(e.field, e.message, e.reason));
  return new RequestError(ENGINE_CODES[e.code] ?? ErrorCode.INTERNAL, e.message);
}

/** Any failure while serving a request, as a RequestError (unexpected ones are INTERNAL). */
export function toRequestError(e: unknown): RequestError {
  if (e instanceof RequestError) return e;
  if (e instanceof InvalidArgumentError) return fromInvalidArgument(e);
  if (e instanceof EngineUnavailableError) return new RequestError(ErrorCode.UNAVAILABLE, e.message);
  if (e instanceof ConnectError) return new RequestError(e.code as number as ErrorCode, e.rawMessage);
  return new RequestError(ErrorCode.INTERNAL, e instanceof Error ? e.message : String(e));
}

/** Any failure of a call, as the status it ends with. */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  return toRequestError(e).toConnectError();
}
