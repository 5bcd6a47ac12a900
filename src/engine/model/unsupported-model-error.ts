/** A checkpoint this server cannot run (unknown architecture, missing or malformed hyperparameters or tensors). */
export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}
