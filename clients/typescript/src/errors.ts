// The one error type of this package: a request the server refused or that failed, or a call
// that ended badly (deadline, cancellation, connection), with its gRPC status code and, for
// INVALID_ARGUMENT, the offending request field (e.g. `sampling.top_p`).
import { Code, ConnectError } from '@connectrpc/connect';
import { GenerationErrorSchema, type GenerationError } from './proto.ts';

export { Code };

export class GenerationServiceError extends Error {
  override name = 'GenerationServiceError';

  constructor(
    message: string,
    /** The gRPC status code (Code.InvalidArgument, Code.Unavailable, …). */
    readonly code: Code,
    /** The offending request field for Code.InvalidArgument, as a snake_case path; '' otherwise. */
    readonly field = '',
    /** The request it concerns, for errors of one request on a session. */
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** E.g. "invalid_argument", "unavailable", as OpenAI-style error types want it. */
  get codeName(): string {
    return Code[this.code].replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  }

  /** Whether retrying later may succeed (the server is starting, restarting or overloaded). */
  get retryable(): boolean {
    return this.code === Code.Unavailable || this.code === Code.ResourceExhausted;
  }

  /** From a GenerationError the server sent on a session. */
  static fromProto(e: GenerationError, requestId?: string): GenerationServiceError {
    return new GenerationServiceError(e.message, e.code as number as Code, e.field, requestId);
  }

  /** From any failure of a call (a ConnectError carries the GenerationError in its details). */
  static from(e: unknown, requestId?: string): GenerationServiceError {
    if (e instanceof GenerationServiceError) return e;
    const err = ConnectError.from(e);
    const [detail] = err.findDetails(GenerationErrorSchema);
    return new GenerationServiceError(detail?.message || err.rawMessage, err.code, detail?.field ?? '', requestId, { cause: e });
  }
}
