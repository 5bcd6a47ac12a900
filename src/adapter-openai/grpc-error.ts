// Turns a failed gRPC call (or a request's GenerationError) into the OpenAI error a client of the
// REST API expects: the status code OpenAI uses for that kind of failure, and for invalid
// arguments the request field named as the client spelled it, not as the proto does.
import { Code, ConnectError } from '@connectrpc/connect';
import { ErrorCode, GenerationErrorSchema, type GenerationError } from '../gen/mlxserve/v1/generation_pb.ts';
import { invalidRequest, modelNotFound, OpenAIError, rateLimited, serverError, unauthorized, unavailable } from './openai-error.ts';

/** How this request's client named the fields whose proto name differs from the REST one. */
export interface ParamNames {
  /** 'messages' for chat, 'prompt' for completions. */
  prompt: string;
  /** 'max_tokens' or 'max_completion_tokens', whichever the client sent. */
  maxTokens: string;
  /** 'top_logprobs' for chat, 'logprobs' for completions (an integer there). */
  topLogprobs: string;
  /** The model the client asked for, for the 404 message. */
  model: string;
  /** The parameter that asked for structured output (`response_format`, `guided_json`, ...). */
  structuredOutput?: string;
}

/** The proto's structured_output cases (sampling.json_schema, ...). */
const STRUCTURED_OUTPUT_FIELDS = new Set(['json_schema', 'regex', 'choice', 'grammar', 'json_object']);

/** The REST parameter a proto field path (e.g. `sampling.top_p`, `prompt.chat.messages`) stands for. */
export function restParam(field: string, names: ParamNames): string | null {
  if (!field) return null;
  const path = field.replace(/^sampling\./, '');
  if (path === 'prompt.chat.tools' || path === 'prompt.chat.tool_choice') return path.slice('prompt.chat.'.length);
  if (path === 'prompt' || path.startsWith('prompt.')) return names.prompt;
  if (path === 'max_tokens') return names.maxTokens;
  if (path === 'top_logprobs') return names.topLogprobs;
  if (path === 'model') return 'model';
  if (STRUCTURED_OUTPUT_FIELDS.has(path)) return names.structuredOutput ?? 'response_format';
  return path;
}

/**
 * Maps a failure kind (a gRPC status code; ErrorCode numbers are the same) to an OpenAI error.
 * `reason`: the GenerationError's reason, the message's rest after the field's path, so the
 * message can name the parameter as the client sent it ("top_p must be …", not "sampling.top_p …").
 */
export function errorFromCode(code: number, message: string, field: string, names: ParamNames, reason = ''): OpenAIError {
  switch (code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
    case Code.FailedPrecondition: {
      const param = restParam(field, names);
      const text = param && reason ? param + reason : message;
      // OpenAI's code for this case, which clients test to trim their history and retry.
      return invalidRequest(param, text, /maximum context length/.test(message) ? 'context_length_exceeded' : null);
    }
    case Code.NotFound:
      return modelNotFound(names.model);
    case Code.ResourceExhausted:
      return rateLimited(message);
    case Code.Unauthenticated:
      return unauthorized(message);
    case Code.PermissionDenied:
      return new OpenAIError(403, message, 'permission_error');
    case Code.Unavailable:
      return unavailable(message);
    case Code.DeadlineExceeded:
      return serverError(`the request timed out: ${message}`, 504, 'timeout');
    case Code.Canceled:
      return unavailable(`the request was cancelled by the server: ${message}`);
    default:
      return serverError(message || 'internal server error');
  }
}

export function errorFromGenerationError(e: GenerationError | undefined, names: ParamNames): OpenAIError {
  if (!e) return serverError('generation failed without an error description');
  return errorFromCode(e.code === ErrorCode.UNSPECIFIED ? Code.Internal : e.code, e.message, e.field, names, e.reason);
}

/** Any error thrown by a gRPC call (or by the adapter itself) as an OpenAI error. */
export function errorFromThrown(err: unknown, names: ParamNames): OpenAIError {
  if (err instanceof OpenAIError) return err;
  const ce = ConnectError.from(err);
  const detail = ce.findDetails(GenerationErrorSchema)[0];
  const field = detail?.field ?? '';
  const message = detail?.message || ce.rawMessage;
  if (ce.code === Code.Unavailable && !detail) {
    // Transport-level failure: the gRPC service itself cannot be reached.
    return unavailable(`the generation service is unavailable: ${ce.rawMessage}`);
  }
  return errorFromCode(ce.code, message, field, names, detail?.reason);
}
