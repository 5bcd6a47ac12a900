// The one error type model resolution throws. `code` lets callers (the CLI, the service's
// start-up) tell "fix your --model" from "the network is down" without parsing messages.

export type ModelSourceErrorCode =
  /** The spec is neither a path, a Hugging Face repo id nor a known alias. */
  | 'invalid_spec'
  /** A path was given but nothing is there. */
  | 'not_found'
  /** Something is there but it is not a model this server can load. */
  | 'invalid_model'
  /** The Hugging Face hub could not be reached (refused, timed out, DNS). */
  | 'hub_unreachable'
  /** The hub answered, but with an error (missing repo, gated repo, server error). */
  | 'hub_error'
  /** Offline mode and the model is not in the cache. */
  | 'not_cached'
  /** A downloaded or extracted file does not have the expected size or sha256. */
  | 'checksum_mismatch'
  /** A download tool (pip) failed or produced nothing usable. */
  | 'fetch_failed';

export class ModelSourceError extends Error {
  /** The option the error is about, for messages like "--model: ...". */
  readonly field = 'model';

  constructor(
    readonly code: ModelSourceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelSourceError';
  }
}
