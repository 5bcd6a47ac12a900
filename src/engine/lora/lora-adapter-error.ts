/** A LoRA adapter directory this server cannot use; names the file and, where one is at fault, the field or tensor. */
export class LoraAdapterError extends Error {
  override name = 'LoraAdapterError';
  constructor(
    message: string,
    /** The file at fault (the adapter directory itself when a file is missing from it). */
    readonly file: string,
    /** The config field (dotted, e.g. lora_parameters.rank) or the tensor name; undefined for the whole file. */
    readonly field?: string,
  ) {
    super(field === undefined ? `${file}: ${message}` : `${file}: ${field}: ${message}`);
  }
}
