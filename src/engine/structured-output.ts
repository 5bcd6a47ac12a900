// What a request's output is constrained to (structured output): a JSON schema, any JSON object,
// a regular expression, a choice of strings, an EBNF grammar, or an XGrammar structural tag (the
// server builds those for tool calls). The engine compiles it into a grammar and masks each step's
// logits with it (grammar/). Dependency-free: the server checks and forwards the same shape.
import { InvalidArgumentError } from './sampling-params.ts';

export type StructuredOutput =
  | { type: 'json_schema'; schema: string }
  | { type: 'json_object' }
  | { type: 'regex'; pattern: string }
  | { type: 'choice'; choices: string[] }
  | { type: 'grammar'; ebnf: string }
  | { type: 'structural_tag'; tag: string };

export const STRUCTURED_OUTPUT_TYPES: readonly StructuredOutput['type'][] = [
  'json_schema',
  'json_object',
  'regex',
  'choice',
  'grammar',
  'structural_tag',
];

/** Bounds what one request may ask the grammar compiler to do (its work grows with the text). */
export const MAX_STRUCTURED_OUTPUT_CHARS = 256 * 1024;
export const MAX_CHOICES = 1024;

/**
 * Checks a structured-output spec's shape and size; whether it compiles is the engine's to say.
 * Errors name the field after the spec's type (`json_schema`, `regex`, ...), as the proto's
 * oneof does; the REST adapter names the parameter its client used.
 */
export function validateStructuredOutput(spec: StructuredOutput): void {
  const field = typeof spec?.type === 'string' ? spec.type : 'structured_output';
  const fail = (reason: string) => {
    throw InvalidArgumentError.ofField(field, reason);
  };
  const text = (value: unknown, what: string) => {
    if (typeof value !== 'string' || value.trim().length === 0) fail(`: the ${what} must be a non-empty string`);
    if ((value as string).length > MAX_STRUCTURED_OUTPUT_CHARS)
      fail(`: the ${what} is longer than ${MAX_STRUCTURED_OUTPUT_CHARS} characters`);
  };
  switch (spec?.type) {
    case 'json_schema': {
      text(spec.schema, 'JSON schema');
      let parsed: unknown;
      try {
        parsed = JSON.parse(spec.schema);
      } catch (err) {
        fail(`: the JSON schema is not valid JSON (${(err as Error).message})`);
      }
      if (typeof parsed !== 'boolean' && (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))) {
        fail(': the JSON schema must be a JSON object');
      }
      return;
    }
    case 'json_object':
      return;
    case 'regex':
      text(spec.pattern, 'regular expression');
      return;
    case 'grammar':
      text(spec.ebnf, 'grammar');
      return;
    case 'structural_tag':
      text(spec.tag, 'structural tag');
      return;
    case 'choice': {
      if (!Array.isArray(spec.choices) || spec.choices.length === 0) fail(': the choice list must hold at least one string');
      if (spec.choices.length > MAX_CHOICES) fail(`: at most ${MAX_CHOICES} choices are allowed, got ${spec.choices.length}`);
      let total = 0;
      for (const c of spec.choices) {
        if (typeof c !== 'string' || c.length === 0) fail(': every choice must be a non-empty string');
        // XGrammar takes strings as C strings: a NUL would cut the choice short.
        if (c.includes('\u0000')) fail(': a choice must not contain the NUL character');
        total += c.length;
      }
      if (total > MAX_STRUCTURED_OUTPUT_CHARS) fail(`: the choices are longer than ${MAX_STRUCTURED_OUTPUT_CHARS} characters together`);
      return;
    }
    default:
      fail(`: unknown structured output type ${JSON.stringify((spec as { type?: unknown })?.type)}`);
  }
}

/** Identifies a spec for the compiled-grammar cache: equal keys compile to the same grammar. */
export function structuredOutputKey(spec: StructuredOutput): string {
  switch (spec.type) {
    case 'json_schema':
      return `json_schema:${spec.schema}`;
    case 'json_object':
      return 'json_object';
    case 'regex':
      return `regex:${spec.pattern}`;
    case 'choice':
      return `choice:${JSON.stringify(spec.choices)}`;
    case 'grammar':
      return `grammar:${spec.ebnf}`;
    case 'structural_tag':
      return `structural_tag:${spec.tag}`;
  }
}

/** An EBNF grammar whose only sentences are the given strings (XGrammar's dialect). */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfString).join(' | ')}`;
}

/** A string literal in XGrammar's EBNF: JSON-like escapes, every non-printable character escaped. */
export function ebnfString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
