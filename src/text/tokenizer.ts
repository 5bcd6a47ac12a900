// A model's tokenizer: text ↔ token ids, the bytes behind each token (for streaming and logprobs),
// the ids that end generation, and the chat template. Encoding is @huggingface/tokenizers' over an
// HF tokenizer.json (read from a model directory, or built from a GGUF's metadata); decoding is
// done here from each token's bytes so that streamed text and one-shot decoding agree exactly.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ChatMessage } from './generation.ts';
import { InvalidArgumentError } from '../engine/sampling-params.ts';
import { byteLevelTokenBytes } from './byte-level.ts';
import { ChatTemplate } from './chat-template.ts';
import { adjacentCharacterPairs, fastPreTokenizerFor, NeverMergedBoundarySplitter } from './fast-pre-tokenizer.ts';
import { tokenizerDefinitionFromGguf } from './gguf-vocabulary.ts';
import { tokenizerDefinitionFromHfDirectory } from './hf-directory.ts';
import type { TokenizerDefinition } from './tokenizer-definition.ts';
import { type TemplateToolSupport, detectToolCallFormat } from './tool-calls/template-format.ts';
import { messagesForToolTemplate, messagesWithToolPrompt } from './tool-calls/tool-messages.ts';
import type { ToolCallFormat, ToolDefinition } from './tool-calls/tool-types.ts';

export interface EncodeOptions {
  /** Add the BOS/EOS tokens the tokenizer's post-processor adds. Default true, as in HF. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special (control) tokens. Default false. */
  skipSpecialTokens?: boolean;
}

const utf8 = new TextEncoder();

/** The token a tokenizer.json merge creates; merges are "left right" strings or [left, right] pairs. */
function mergeResult(merge: string | [string, string]): string {
  if (typeof merge !== 'string') return merge[0] + merge[1];
  const at = merge.indexOf(' ', 1);
  return at < 0 ? merge : merge.slice(0, at) + merge.slice(at + 1);
}

/** A BPE model whose result on a word is the concatenation of its results on split pieces. */
function isPlainBpe(model: Record<string, unknown>): boolean {
  return (
    model.type === 'BPE' &&
    model.ignore_merges !== true &&
    !model.end_of_word_suffix &&
    !model.continuing_subword_prefix &&
    !model.continuing_subword_suffix
  );
}
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId?: number;
  /** Every id that ends generation (eos, end-of-turn tokens, generation_config's list). */
  readonly eosTokenIds: number[];
  /** Decoding drops one leading space (SentencePiece's prefix space). */
  readonly stripsLeadingSpace: boolean;
  /** Non-fatal oddities found while loading, for the server log. */
  readonly warnings: string[];
  private readonly hf: HfTokenizer;
  private readonly bytesById: Array<Uint8Array | undefined>;
  private readonly chatTemplate?: ChatTemplate;
  private readonly chatTemplateError?: string;
  /** What the chat template shows of tools, and the call format it teaches the model. */
  readonly toolSupport: TemplateToolSupport;
  /**
   * The format the model writes tool calls in, which the server parses and constrains: the
   * template's (toolSupport.format) unless the server was told otherwise (--tool-call-parser).
   */
  toolCallFormat: ToolCallFormat;

  constructor(readonly definition: TokenizerDefinition) {
    this.hf = new HfTokenizer(definition.tokenizerJson, definition.tokenizerConfig);
    this.installFastPreTokenizer();
    this.vocabSize = definition.tokens.length;
    this.bosTokenId = definition.bosTokenId;
    this.eosTokenIds = definition.eosTokenIds;
    this.stripsLeadingSpace = definition.stripLeadingSpace;
    this.warnings = [...definition.warnings];
    this.bytesById = new Array(this.vocabSize);
    const source = definition.chatTemplates.default;
    this.toolSupport = detectToolCallFormat(source);
    this.toolCallFormat = this.toolSupport.format;
    if (source !== undefined) {
      try {
        this.chatTemplate = new ChatTemplate(source, definition.templateTokens);
      } catch (err) {
        this.chatTemplateError = `the model's chat template does not parse: ${(err as Error).message}`;
        this.warnings.push(this.chatTemplateError);
      }
    }
  }

  /** From a GGUF file's metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`). */
  static fromGguf(metadata: Record<string, unknown>): Tokenizer {
    return new Tokenizer(tokenizerDefinitionFromGguf(metadata));
  }

  /** From a Hugging Face model directory (tokenizer.json and its companions). */
  static async fromHfDirectory(dir: string): Promise<Tokenizer> {
    return new Tokenizer(await tokenizerDefinitionFromHfDirectory(dir));
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError('prompt', 'the prompt must be a string');
    const { ids } = this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true });
    for (const id of ids) {
      // A byte-level or byte-fallback vocabulary can spell any text; a gap means a broken vocabulary.
      if (id === undefined) throw new Error('the tokenizer produced a token outside its vocabulary');
    }
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      if (opts.skipSpecialTokens && this.isSpecial(id)) continue;
      const bytes = this.tokenBytes(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    const text = new TextDecoder('utf-8').decode(all);
    return this.stripsLeadingSpace && text.startsWith(' ') ? text.slice(1) : text;
  }

  /** The raw bytes token `id` stands for (special tokens: their text). May be part of a UTF-8 character. */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    let bytes = this.bytesById[id];
    if (bytes === undefined) {
      bytes = this.computeTokenBytes(id);
      this.bytesById[id] = bytes;
    }
    return bytes;
  }

  /**
   * A readable form of one token for logprobs: its text, or for a token that is only part of a
   * UTF-8 character, `bytes:` and its bytes escaped (as OpenAI's API shows such tokens).
   */
  tokenText(id: number): string {
    const bytes = this.tokenBytes(id);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return `bytes:${Array.from(bytes, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
    }
  }

  isSpecial(id: number): boolean {
    return this.definition.addedTokens.get(id)?.special === true;
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== undefined;
  }

  /**
   * The prompt text for a conversation; refuses (InvalidArgumentError on `messages`) when it
   * cannot. Tools and the tool calls and results in the conversation go to a template that knows
   * tools as transformers passes them; for one that does not, they are written into the messages
   * in the model's tool-call format (tool-calls/tool-messages.ts).
   */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; tools?: readonly ToolDefinition[] } = {}): string {
    if (!this.chatTemplate) {
      throw new InvalidArgumentError(
        'messages',
        this.chatTemplateError ?? 'this model has no chat template; send a text prompt instead of messages',
      );
    }
    const addGenerationPrompt = opts.addGenerationPrompt ?? true;
    const tools = opts.tools ?? [];
    const toolTurns = messages.some((m) => m.role === 'tool' || (m.toolCalls?.length ?? 0) > 0);
    if (tools.length === 0 && !toolTurns) return this.chatTemplate.render(messages, { addGenerationPrompt });
    if (this.toolSupport.templateHasTools) {
      return this.chatTemplate.render(messagesForToolTemplate(messages), { addGenerationPrompt, tools });
    }
    return this.chatTemplate.render(messagesWithToolPrompt(messages, tools, this.toolCallFormat), { addGenerationPrompt });
  }

  /** Swaps in an equivalent, faster pre-tokenizer where one applies (see fast-pre-tokenizer.ts). */
  private installFastPreTokenizer(): void {
    const json = this.definition.tokenizerJson;
    const fast = fastPreTokenizerFor(json.pre_tokenizer);
    if (fast) {
      this.hf.pre_tokenizer = fast;
    } else if (json.pre_tokenizer === null && isPlainBpe(json.model)) {
      // What merges can create; vocabulary tokens are added too, which only makes fewer splits.
      const merges = (json.model.merges as Array<string | [string, string]>) ?? [];
      const mergeResults = merges.map(mergeResult);
      const pairs = adjacentCharacterPairs(this.definition.tokens);
      for (const pair of adjacentCharacterPairs(mergeResults)) pairs.add(pair);
      this.hf.pre_tokenizer = new NeverMergedBoundarySplitter(pairs);
    }
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${String(id)} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }

  private computeTokenBytes(id: number): Uint8Array {
    const added = this.definition.addedTokens.get(id);
    if (added) return utf8.encode(added.content);
    const token = this.definition.tokens[id];
    if (token === undefined) return new Uint8Array(0);
    if (this.definition.spelling === 'byte-level') return byteLevelTokenBytes(token);
    const byte = this.definition.byteFallback ? BYTE_TOKEN.exec(token) : null;
    if (byte) return Uint8Array.of(parseInt(byte[1], 16));
    return utf8.encode(token.replaceAll('▁', ' '));
  }
}
