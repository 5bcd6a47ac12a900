// Reads a Hugging Face model directory's tokenizer files into a TokenizerDefinition:
// tokenizer.json (required), tokenizer_config.json (special tokens, add_bos/eos, chat template),
// chat_template.jinja / chat_template.json (newer places for the template) and
// generation_config.json (the ids that end generation). Precedence follows transformers.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endOfGenerationIds } from './end-of-generation.ts';
import { bosEosPostProcessor } from './bos-eos-post-processor.ts';
import type { AddedTokenInfo, TokenizerDefinition, TokenizerJson } from './tokenizer-definition.ts';

class HfTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HfTokenizerError';
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HfTokenizerError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

function parseJsonObject(text: string, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HfTokenizerError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HfTokenizerError(`${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

async function readJsonObject(path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readOptional(path);
  return text === undefined ? undefined : parseJsonObject(text, path);
}

/** Special tokens in tokenizer_config.json are a string or an AddedToken object `{content: ...}`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function decoderSteps(decoder: unknown): Array<Record<string, unknown>> {
  if (!decoder || typeof decoder !== 'object') return [];
  const d = decoder as Record<string, unknown>;
  if (d.type === 'Sequence' && Array.isArray(d.decoders)) return d.decoders.flatMap(decoderSteps);
  return [d];
}

/** Leading spaces the decoder strips: SentencePiece's prefix space, via Strip or Metaspace. */
function leadingSpaceStripped(decoder: unknown): boolean {
  return decoderSteps(decoder).some((step) => {
    if (step.type === 'Strip') return step.content === ' ' && Number(step.start) >= 1;
    if (step.type === 'Metaspace') {
      const scheme = step.prepend_scheme as string | undefined;
      return scheme === undefined ? step.add_prefix_space !== false : scheme !== 'never';
    }
    return false;
  });
}

function chatTemplatesFromConfig(value: unknown, path: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === 'string') return { default: value };
  if (Array.isArray(value)) {
    const templates: Record<string, string> = {};
    for (const [i, entry] of value.entries()) {
      const { name, template } = (entry ?? {}) as { name?: unknown; template?: unknown };
      if (typeof name !== 'string' || typeof template !== 'string') {
        throw new HfTokenizerError(`${path}: chat_template[${i}] must be {"name": string, "template": string}`);
      }
      templates[name] = template;
    }
    return templates;
  }
  throw new HfTokenizerError(`${path}: chat_template must be a string or a list of named templates`);
}

function eosIdsFromGenerationConfig(config: Record<string, unknown> | undefined, path: string, vocabSize: number): number[] {
  const value = config?.eos_token_id;
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  for (const id of ids) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= vocabSize) {
      throw new HfTokenizerError(`${path}: eos_token_id ${JSON.stringify(id)} is not a token id in [0, ${vocabSize})`);
    }
  }
  return ids as number[];
}

export async function tokenizerDefinitionFromHfDirectory(dir: string): Promise<TokenizerDefinition> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerText = await readOptional(tokenizerPath);
  if (tokenizerText === undefined) throw new HfTokenizerError(`${tokenizerPath} does not exist`);
  const tokenizerJson = parseJsonObject(tokenizerText, tokenizerPath) as TokenizerJson;
  const model = tokenizerJson.model;
  if (!model || typeof model !== 'object' || model.type !== 'BPE') {
    throw new HfTokenizerError(`${tokenizerPath}: model.type ${JSON.stringify(model?.type)} is not supported; only "BPE" is`);
  }
  if (!model.vocab || typeof model.vocab !== 'object' || Array.isArray(model.vocab)) {
    throw new HfTokenizerError(`${tokenizerPath}: model.vocab must be an object of token → id`);
  }
  if (!Array.isArray(model.merges)) throw new HfTokenizerError(`${tokenizerPath}: model.merges must be a list`);
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const) tokenizerJson[key] ??= null;
  tokenizerJson.added_tokens ??= [];
  if (!Array.isArray(tokenizerJson.added_tokens)) throw new HfTokenizerError(`${tokenizerPath}: added_tokens must be a list`);

  const tokens: Array<string | undefined> = [];
  for (const [token, id] of Object.entries(model.vocab as Record<string, unknown>)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      throw new HfTokenizerError(`${tokenizerPath}: vocab id of ${JSON.stringify(token)} is not a non-negative integer`);
    tokens[id as number] = token;
  }
  const addedTokens = new Map<number, AddedTokenInfo>();
  for (const [i, added] of tokenizerJson.added_tokens.entries()) {
    if (!added || !Number.isInteger(added.id) || added.id < 0 || typeof added.content !== 'string') {
      throw new HfTokenizerError(`${tokenizerPath}: added_tokens[${i}] must have an integer id and a string content`);
    }
    tokens[added.id] = added.content;
    addedTokens.set(added.id, { content: added.content, special: added.special === true });
  }
  const vocabSize = tokens.length;
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => t !== undefined && !idOf.has(t) && idOf.set(t, id));
  for (const [id, t] of addedTokens) idOf.set(t.content, id);

  const configPath = join(dir, 'tokenizer_config.json');
  const config = (await readJsonObject(configPath)) ?? {};
  const generationPath = join(dir, 'generation_config.json');
  const generationConfig = await readJsonObject(generationPath);
  const warnings: string[] = [];

  const templateTokens: Record<string, string> = {};
  const specialIdOf = (field: string): number | undefined => {
    const content = tokenContent(config[field]);
    if (content === undefined) return undefined;
    templateTokens[field] = content;
    const id = idOf.get(content);
    if (id === undefined) warnings.push(`${configPath}: ${field} ${JSON.stringify(content)} is not in the vocabulary`);
    return id;
  };
  const bosFromConfig = specialIdOf('bos_token');
  const eosFromConfig = specialIdOf('eos_token');
  specialIdOf('unk_token');
  specialIdOf('pad_token');
  const generationBos = generationConfig?.bos_token_id;
  const bosTokenId =
    bosFromConfig ?? (Number.isInteger(generationBos) && (generationBos as number) < vocabSize ? (generationBos as number) : undefined);

  // transformers rebuilds the post-processor when tokenizer_config states add_bos/add_eos.
  const addBos = config.add_bos_token;
  const addEos = config.add_eos_token;
  if (typeof addBos === 'boolean' || typeof addEos === 'boolean') {
    const bosText = addBos === true ? tokenContent(config.bos_token) : undefined;
    const eosText = addEos === true ? tokenContent(config.eos_token) : undefined;
    if (addBos === true && bosText === undefined) warnings.push(`${configPath}: add_bos_token is true but bos_token is not set`);
    if (addEos === true && eosText === undefined) warnings.push(`${configPath}: add_eos_token is true but eos_token is not set`);
    tokenizerJson.post_processor = bosEosPostProcessor(bosText, eosText);
  }

  let chatTemplates: Record<string, string>;
  const jinjaPath = join(dir, 'chat_template.jinja');
  const jsonTemplatePath = join(dir, 'chat_template.json');
  const jinja = await readOptional(jinjaPath);
  const jsonTemplate = jinja === undefined ? await readJsonObject(jsonTemplatePath) : undefined;
  if (jinja !== undefined) chatTemplates = { default: jinja };
  else if (jsonTemplate !== undefined) chatTemplates = chatTemplatesFromConfig(jsonTemplate.chat_template, jsonTemplatePath);
  else chatTemplates = chatTemplatesFromConfig(config.chat_template, configPath);

  const decoder = tokenizerJson.decoder;
  const byteLevel = decoderSteps(decoder).some((step) => step.type === 'ByteLevel');
  const specialTokens = [...addedTokens].filter(([, t]) => t.special).map(([id, t]): [number, string] => [id, t.content]);
  return {
    tokenizerJson,
    tokenizerConfig: { clean_up_tokenization_spaces: false },
    tokens,
    spelling: byteLevel ? 'byte-level' : 'sentencepiece',
    byteFallback: model.byte_fallback === true,
    addedTokens,
    bosTokenId,
    eosTokenIds: endOfGenerationIds(
      [eosFromConfig, ...eosIdsFromGenerationConfig(generationConfig, generationPath, vocabSize)],
      specialTokens,
    ),
    stripLeadingSpace: !byteLevel && leadingSpaceStripped(decoder),
    chatTemplates,
    templateTokens,
    warnings,
  };
}
