// The shape of a REST request body as data: a JSON Schema object (the subset OpenAPI 3.1 takes)
// whose `properties` are every field the server knows. The body readers may read only these
// fields, the unknown-field policy treats every other field as unknown, and the OpenAPI document
// is built from the same objects, so what is documented is what is read.

/** A JSON Schema (2020-12) value, as OpenAPI 3.1 embeds it. Only the keywords this server uses. */
export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null' | JsonSchemaType[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  format?: string;
  deprecated?: boolean;
  /** Sample values (the docs page fills its "Try it out" form with the first). */
  examples?: unknown[];
}

type JsonSchemaType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** A request body: an object whose properties are the known fields. */
export interface BodySchema extends JsonSchema {
  type: 'object';
  /** A title for the OpenAPI components section (e.g. ChatCompletionRequest). */
  title: string;
  properties: Record<string, JsonSchema>;
}

/** The top-level fields a body schema knows. */
export function knownFields(schema: BodySchema): ReadonlySet<string> {
  let set = knownCache.get(schema);
  if (!set) {
    set = new Set(Object.keys(schema.properties));
    knownCache.set(schema, set);
  }
  return set;
}

const knownCache = new WeakMap<BodySchema, ReadonlySet<string>>();

/** A field the server accepts for compatibility and ignores (it changes nothing here). */
export function acceptedAndIgnored(schema: JsonSchema, why: string): JsonSchema {
  return { ...schema, description: `Accepted and ignored: ${why}` };
}

/** A field the server knows but does not implement: refused with 400 unless the value asks for nothing. */
export function notSupported(schema: JsonSchema, why: string): JsonSchema {
  return { ...schema, description: `Not supported: ${why}` };
}
