// Typed reads of a JSON request body against its schema (request-schemas/): a reader may read only
// the fields the schema lists, and the fields it read are recorded, so a test can check that the
// readers and the schemas (and so the OpenAPI document and the unknown-field policy) name the same
// fields. A field set to null counts as not given (many clients send explicit nulls for
// defaults). Type errors use OpenAI's wording.
import { invalidRequest, unsupportedParameter } from './openai-error.ts';
import { type BodySchema, knownFields } from './request-schemas/body-schema.ts';

type Json = unknown;

function typeName(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return 'an integer';
    // Integers past 2^53 are not exact in JSON's doubles: say so rather than "got an integer".
    if (Number.isInteger(value)) return `${quote(value)}, an integer beyond ±${Number.MAX_SAFE_INTEGER}`;
    return `a decimal (${quote(value)})`;
  }
  return `a ${typeof value}`;
}

/** A client's value quoted in an error message: JSON, cut short (a message must not echo megabytes). */
export function quote(value: Json, maxChars = 80): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/** The service's integer fields are 32-bit (proto int32); a larger value could not even be sent. */
export function isInt32(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= -(2 ** 31) && (value as number) < 2 ** 31;
}

export function outOfInt32Range(param: string, value: number) {
  return invalidRequest(
    param,
    `Invalid '${param}': ${value} is out of range; expected an integer between ${-(2 ** 31)} and ${2 ** 31 - 1}.`,
  );
}

export function invalidType(param: string, expected: string, value: Json) {
  return invalidRequest(param, `Invalid type for '${param}': expected ${expected}, but got ${typeName(value)} instead.`, 'invalid_type');
}

export function isJsonObject(value: Json): value is Record<string, Json> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export class RequestBody {
  private readonly read = new Set<string>();

  private constructor(
    private readonly fields: Record<string, Json>,
    private readonly known: ReadonlySet<string>,
  ) {}

  /** The body must be a JSON object. */
  static from(value: Json, schema: BodySchema): RequestBody {
    if (!isJsonObject(value)) throw invalidRequest(null, 'The request body must be a JSON object.');
    return new RequestBody(value, knownFields(schema));
  }

  /** The fields read so far. */
  fieldsRead(): ReadonlySet<string> {
    return this.read;
  }

  private mark(name: string): void {
    // A reader asking for a field its schema lacks is a bug: the field would be undocumented and
    // counted as unknown while it is being used.
    if (!this.known.has(name)) throw new Error(`the request schema does not list the field '${name}' a reader reads`);
    this.read.add(name);
  }

  /** The raw value, or undefined when absent or null. */
  value(name: string): Json {
    this.mark(name);
    const v = this.fields[name];
    return v === null ? undefined : v;
  }

  /** Whether the field is present with the value null (for fields where null means "no limit"). */
  isNull(name: string): boolean {
    this.mark(name);
    return this.fields[name] === null;
  }

  has(name: string): boolean {
    return this.value(name) !== undefined;
  }

  string(name: string): string | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalidType(name, 'a string', v);
    return v;
  }

  boolean(name: string): boolean | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v);
    return v;
  }

  number(name: string): number | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidType(name, 'a decimal', v);
    return v;
  }

  integer(name: string): number | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalidType(name, 'an integer', v);
    return v;
  }

  /** An integer the service takes as int32 (token counts, token ids, top_k). */
  int32(name: string): number | undefined {
    const v = this.integer(name);
    if (v !== undefined && !isInt32(v)) throw outOfInt32Range(name, v);
    return v;
  }

  object(name: string): Record<string, Json> | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw invalidType(name, 'an object', v);
    return v as Record<string, Json>;
  }

  /** Fields accepted for compatibility that do not change what the server does. */
  ignore(...names: string[]): void {
    for (const n of names) this.mark(n);
  }

  /**
   * Fields this server does not implement: refused when given, unless `harmless(value)` says the
   * value asks for nothing (e.g. an empty tool list, `n_probs: 0`).
   */
  unsupported(name: string, why?: string, harmless: (value: Json) => boolean = () => false): void {
    const v = this.value(name);
    if (v !== undefined && !harmless(v)) throw unsupportedParameter(name, why);
  }
}
