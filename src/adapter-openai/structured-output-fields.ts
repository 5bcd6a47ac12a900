// The structured-output fields of a REST request → the sampling message's structured_output
// oneof. OpenAI's `response_format` (json_object, json_schema) and vLLM's extensions: the older
// `guided_json` / `guided_regex` / `guided_choice` / `guided_grammar` and the newer
// `structured_outputs` object. One format per request; which field carried it is kept so a
// grammar that does not compile is reported under the parameter the client sent.
import type { SamplingInit } from './sampling-fields.ts';
import { invalidRequest } from './openai-error.ts';
import { invalidType, type RequestBody } from './request-body.ts';

type Json = ReturnType<RequestBody['value']>;
export type StructuredOutputInit = SamplingInit['structuredOutput'];

export interface StructuredOutputField {
  output: StructuredOutputInit;
  /** The request parameter that asked for it. */
  param: string;
}

const SCHEMA_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function schemaText(param: string, schema: Json): string {
  if (typeof schema === 'string') return schema; // vLLM accepts a schema serialized as a string
  if (typeof schema === 'boolean' || (schema !== null && typeof schema === 'object' && !Array.isArray(schema)))
    return JSON.stringify(schema);
  throw invalidType(param, 'a JSON schema object', schema);
}

function choices(param: string, v: Json): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((c) => typeof c === 'string'))
    throw invalidType(param, 'a non-empty array of strings', v);
  return v as string[];
}

function text(param: string, v: Json): string {
  if (typeof v !== 'string') throw invalidType(param, 'a string', v);
  return v;
}

function fromResponseFormat(format: Json): StructuredOutputInit | undefined {
  if (format === null || typeof format !== 'object' || Array.isArray(format)) throw invalidType('response_format', 'an object', format);
  const f = format as Record<string, Json>;
  switch (f.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { case: 'jsonObject', value: {} };
    case 'json_schema': {
      const spec = f.json_schema;
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
        throw invalidRequest('response_format', "Missing required parameter: 'response_format.json_schema'.", 'missing_required_parameter');
      }
      const { name, schema, strict } = spec as Record<string, Json>;
      if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) {
        throw invalidRequest(
          'response_format',
          "Invalid 'response_format.json_schema.name': must be 1 to 64 characters of a-z, A-Z, 0-9, underscores and dashes.",
        );
      }
      if (strict !== undefined && strict !== null && typeof strict !== 'boolean')
        throw invalidType('response_format.json_schema.strict', 'a boolean', strict);
      // OpenAI allows the schema to be left out: any JSON object then.
      if (schema === undefined || schema === null) return { case: 'jsonObject', value: {} };
      return { case: 'jsonSchema', value: schemaText('response_format', schema) };
    }
    default:
      throw invalidRequest(
        'response_format',
        `Invalid value for 'response_format.type': ${JSON.stringify(f.type ?? null)}. Supported values are: 'text', 'json_object' and 'json_schema'.`,
        'invalid_value',
      );
  }
}

/** vLLM's `structured_outputs` object: exactly one of json, regex, choice, grammar, json_object. */
function fromStructuredOutputs(v: Json): StructuredOutputInit | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidType('structured_outputs', 'an object', v);
  const o = v as Record<string, Json>;
  const set = ['json', 'regex', 'choice', 'grammar', 'json_object'].filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== false);
  if (set.length > 1) throw invalidRequest('structured_outputs', `Only one of ${set.join(', ')} may be set in 'structured_outputs'.`);
  switch (set[0]) {
    case 'json':
      return { case: 'jsonSchema', value: schemaText('structured_outputs.json', o.json) };
    case 'regex':
      return { case: 'regex', value: text('structured_outputs.regex', o.regex) };
    case 'choice':
      return { case: 'choice', value: { choices: choices('structured_outputs.choice', o.choice) } };
    case 'grammar':
      return { case: 'grammar', value: text('structured_outputs.grammar', o.grammar) };
    case 'json_object':
      if (o.json_object !== true) throw invalidType('structured_outputs.json_object', 'a boolean', o.json_object);
      return { case: 'jsonObject', value: {} };
    default:
      return undefined;
  }
}

/** Reads the structured-output fields; undefined when the output is free text. */
export function readStructuredOutput(body: RequestBody): StructuredOutputField | undefined {
  const found: StructuredOutputField[] = [];
  const add = (param: string, read: (v: Json) => StructuredOutputInit | undefined) => {
    const v = body.value(param);
    if (v === undefined || v === null) return;
    const output = read(v);
    if (output) found.push({ output, param });
  };
  add('response_format', fromResponseFormat);
  add('structured_outputs', fromStructuredOutputs);
  add('guided_json', (v) => ({ case: 'jsonSchema', value: schemaText('guided_json', v) }));
  add('guided_regex', (v) => ({ case: 'regex', value: text('guided_regex', v) }));
  add('guided_choice', (v) => ({ case: 'choice', value: { choices: choices('guided_choice', v) } }));
  add('guided_grammar', (v) => ({ case: 'grammar', value: text('guided_grammar', v) }));
  // vLLM's knobs for its choice of grammar backend and whitespace: this server has one backend
  // and emits compact JSON.
  body.ignore('guided_decoding_backend', 'guided_whitespace_pattern');
  if (found.length > 1) {
    throw invalidRequest(
      found[1].param,
      `Only one structured output format may be given; got ${found.map((f) => `'${f.param}'`).join(' and ')}.`,
    );
  }
  return found[0];
}
