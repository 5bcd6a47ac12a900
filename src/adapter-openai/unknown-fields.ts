// What happens to request fields no schema knows (request-schemas/), as in vLLM: they are accepted
// and ignored, with a warning in the log naming them and a count in /metrics, so clients that send
// vendor extensions (llama.cpp's, OpenRouter's, newer vLLM's) keep working. With --strict-fields
// the first one is refused with 400, OpenAI's answer. Fields a schema knows but the server does
// not implement are the readers' business: they keep their 400 naming the parameter.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log/logger.ts';
import { invalidRequest } from './openai-error.ts';
import { isJsonObject } from './request-body.ts';
import { type BodySchema, knownFields } from './request-schemas/body-schema.ts';

/**
 * Unknown fields counted under their own name; any other is counted as "other". Field names come
 * from clients, so labelling by name alone would let one client create unbounded series; these
 * are the extensions clients of other servers commonly send, worth telling apart.
 */
export const COUNTED_UNKNOWN_FIELDS: ReadonlySet<string> = new Set([
  'chat_template_kwargs',
  'top_a',
  'typical_p',
  'tfs_z',
  'mirostat',
  'mirostat_tau',
  'mirostat_eta',
  'repeat_penalty',
  'repeat_last_n',
  'length_penalty',
  'use_beam_search',
  'skip_special_tokens',
  'spaces_between_special_tokens',
  'truncate_prompt_tokens',
  'prompt_logprobs',
  'return_tokens_as_token_ids',
  'mm_processor_kwargs',
  'documents',
  'priority',
  'cache_prompt',
  'n_probs',
]);

/** Names shown in one log line at most, each cut short: a body may carry thousands of long keys. */
const MAX_LOGGED_FIELDS = 20;
const MAX_NAME_CHARS = 64;

const shortName = (name: string) => (name.length > MAX_NAME_CHARS ? `${name.slice(0, MAX_NAME_CHARS)}…` : name);

export class UnknownFieldPolicy {
  private readonly ignored: Counter<'route' | 'field'>;

  constructor(
    registry: Registry,
    /** --strict-fields: refuse unknown fields with 400 instead of ignoring them. */
    readonly strict: boolean,
  ) {
    this.ignored = new Counter({
      name: 'mlxserve:ignored_request_fields_total',
      help: 'Unknown request fields accepted and ignored, by route and field (well-known vendor extensions by name, any other as "other").',
      labelNames: ['route', 'field'],
      registers: [registry],
    });
  }

  /**
   * Applies the policy to a request body's top-level fields. A body that is not a JSON object is
   * left to the reader, which refuses it.
   */
  screen(json: unknown, schema: BodySchema, route: string, log: Logger): void {
    if (!isJsonObject(json)) return;
    const known = knownFields(schema);
    const unknown = Object.keys(json).filter((name) => !known.has(name));
    if (unknown.length === 0) return;
    if (this.strict) {
      const name = shortName(unknown[0]);
      throw invalidRequest(name, `Unrecognized request argument supplied: ${name}`, 'unrecognized_argument');
    }
    for (const name of unknown) this.ignored.inc({ route, field: COUNTED_UNKNOWN_FIELDS.has(name) ? name : 'other' });
    log.warn(
      { route, fields: unknown.slice(0, MAX_LOGGED_FIELDS).map(shortName), count: unknown.length },
      'ignored unknown request fields',
    );
  }
}
