// An error the adapter answers with, in OpenAI's shape: an HTTP status plus
// {"error": {"message", "type", "param", "code"}}. Every refusal in the adapter is one of these,
// so handlers throw and the server writes the body in one place.

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class OpenAIError extends Error {
  override name = 'OpenAIError';

  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Retry-After on 429 and 503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: a request field is missing, malformed or out of range. */
export function invalidRequest(param: string | null, message: string, code: string | null = null): OpenAIError {
  return new OpenAIError(400, message, 'invalid_request_error', param, code);
}

/** 400: a field OpenAI's API has but this server does not implement. */
export function unsupportedParameter(param: string, why?: string): OpenAIError {
  const detail = why ? `: ${why}` : '';
  return invalidRequest(param, `Unsupported parameter: '${param}' is not supported by this server${detail}.`, 'unsupported_parameter');
}

/** 400: a field this server supports, with a value it does not. */
export function unsupportedValue(param: string, message: string): OpenAIError {
  return invalidRequest(param, `Unsupported value: ${message}`, 'unsupported_value');
}

/** 404 for a model id the server does not serve, as OpenAI words it. */
export function modelNotFound(model: string): OpenAIError {
  return new OpenAIError(
    404,
    `The model \`${model.length > 100 ? `${model.slice(0, 100)}…` : model}\` does not exist or you do not have access to it.`,
    'invalid_request_error',
    'model',
    'model_not_found',
  );
}

export function unauthorized(message: string): OpenAIError {
  return new OpenAIError(401, message, 'invalid_request_error', null, 'invalid_api_key');
}

export function serverError(message: string, status = 500, code: string | null = null): OpenAIError {
  return new OpenAIError(status, message, 'server_error', null, code);
}

/**
 * Seconds a client should wait before retrying a request refused for overload or while the
 * engine restarts. Requests take seconds, so the queue moves within a second or two; OpenAI's
 * SDKs honour Retry-After (and otherwise back off on their own).
 */
export const RETRY_AFTER_SECONDS = 1;

export function unavailable(message: string): OpenAIError {
  return new OpenAIError(503, message, 'server_error', null, 'service_unavailable', { 'retry-after': String(RETRY_AFTER_SECONDS) });
}

export function rateLimited(message: string): OpenAIError {
  return new OpenAIError(429, message, 'rate_limit_error', null, 'rate_limit_exceeded', { 'retry-after': String(RETRY_AFTER_SECONDS) });
}

/** 413: the body is larger than the server accepts. */
/** 415: a body the API cannot read as JSON by its declared type (e.g. a form post). */
export function unsupportedMediaType(contentType: string): OpenAIError {
  const shown = contentType.length > 100 ? `${contentType.slice(0, 100)}…` : contentType;
  return new OpenAIError(
    415,
    `Unsupported content type "${shown}"; send the JSON body with "Content-Type: application/json".`,
    'invalid_request_error',
    null,
    'unsupported_media_type',
  );
}

export function payloadTooLarge(limitBytes: number): OpenAIError {
  return new OpenAIError(413, `The request body is larger than ${limitBytes} bytes.`, 'invalid_request_error', null, 'request_too_large', {
    connection: 'close',
  });
}
