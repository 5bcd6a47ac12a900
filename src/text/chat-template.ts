// Renders a model's Jinja chat template the way transformers' apply_chat_template does (same
// variables: messages, add_generation_prompt, the special token strings, raise_exception,
// strftime_now), with @huggingface/jinja. Every failure is the request's fault or the template's
// refusal, so it is reported as an invalid `messages` argument.
import { Template, parse, tokenize } from '@huggingface/jinja';
import { readFileSync } from 'node:fs';
import type { ChatMessage } from './generation.ts';
import type { TemplateMessage, ToolDefinition } from './tool-calls/tool-types.ts';
import { InvalidArgumentError } from '../engine/sampling-params.ts';

export const CHAT_ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** Checks the shape of chat messages before they reach a template; names the first bad field. */
export function validateChatMessages(messages: unknown): asserts messages is (ChatMessage | TemplateMessage)[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw InvalidArgumentError.ofField('messages', ' must be a non-empty list');
  }
  messages.forEach((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw InvalidArgumentError.ofField('messages', `[${i}] must be an object with role and content`);
    }
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !CHAT_ROLES.has(role)) {
      throw InvalidArgumentError.ofField(
        'messages',
        `[${i}].role must be one of ${[...CHAT_ROLES].join(', ')}, got ${JSON.stringify(role)}`,
      );
    }
    if (typeof content !== 'string') {
      throw InvalidArgumentError.ofField('messages', `[${i}].content must be a string`);
    }
  });
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * transformers' strftime_now global: Python's `datetime.now().strftime(format)` (local time, naive,
 * the C locale: Python never calls setlocale on its own). @huggingface/jinja's own follows the
 * process locale (Llama 3.2's "Today Date: 14 Mär 2026" under de_DE) and knows only %Y %m %d %b
 * %B %H %M. Directives glibc and Python know are written; others are left as they are, as glibc does.
 */
export function strftimeNow(format: string, now: Date = new Date()): string {
  const pad = (n: number, width = 2, fill = '0') => String(n).padStart(width, fill);
  const hour12 = now.getHours() % 12 || 12;
  const dayOfYear = Math.round(
    (Date.UTC(now.getFullYear(), now.getMonth(), now.getDate()) - Date.UTC(now.getFullYear(), 0, 1)) / 86_400_000 + 1,
  );
  const fields: Record<string, () => string> = {
    a: () => DAYS[now.getDay()].slice(0, 3),
    A: () => DAYS[now.getDay()],
    b: () => MONTHS[now.getMonth()].slice(0, 3),
    h: () => MONTHS[now.getMonth()].slice(0, 3),
    B: () => MONTHS[now.getMonth()],
    c: () => strftimeNow('%a %b %e %H:%M:%S %Y', now),
    d: () => pad(now.getDate()),
    e: () => pad(now.getDate(), 2, ' '),
    f: () => pad(now.getMilliseconds() * 1000, 6),
    H: () => pad(now.getHours()),
    I: () => pad(hour12),
    j: () => pad(dayOfYear, 3),
    m: () => pad(now.getMonth() + 1),
    M: () => pad(now.getMinutes()),
    p: () => (now.getHours() < 12 ? 'AM' : 'PM'),
    S: () => pad(now.getSeconds()),
    u: () => String(now.getDay() || 7),
    w: () => String(now.getDay()),
    x: () => strftimeNow('%m/%d/%y', now),
    X: () => strftimeNow('%H:%M:%S', now),
    y: () => pad(now.getFullYear() % 100),
    Y: () => String(now.getFullYear()),
    // A naive datetime has no zone.
    z: () => '',
    Z: () => '',
    '%': () => '%',
  };
  // `%-d`: glibc's flag for no padding.
  return format.replace(/%(-?)([a-zA-Z%])/g, (directive, unpadded: string, name: string) => {
    const field = fields[name];
    if (!field) return directive;
    const text = field();
    return unpadded ? text.replace(/^[0 ]+(?=.)/, '') : text;
  });
}

/**
 * Our strftime_now reaches the template under this name, and a first statement binds strftime_now
 * to it: @huggingface/jinja's render() declares its own strftime_now and refuses a variable of that name.
 */
const STRFTIME_NOW_VARIABLE = '__transformers_strftime_now';
const STRFTIME_NOW_PRELUDE = parse(tokenize(`{% set strftime_now = ${STRFTIME_NOW_VARIABLE} %}`)).body;

export class ChatTemplate {
  private readonly template: Template;

  /** Throws (a plain Error) when the template does not parse. */
  constructor(
    readonly source: string,
    /** bos_token, eos_token, unk_token, pad_token as the template sees them. */
    private readonly specialTokens: Record<string, string>,
  ) {
    this.template = new Template(source);
    this.template.parsed.body.unshift(...STRFTIME_NOW_PRELUDE);
  }

  /** `tools`: passed to the template as transformers passes them ([{type: 'function', function}]). */
  render(messages: TemplateMessage[], opts: { addGenerationPrompt: boolean; tools?: readonly ToolDefinition[] }): string {
    validateChatMessages(messages);
    let text: unknown;
    try {
      text = this.template.render({
        ...this.specialTokens,
        [STRFTIME_NOW_VARIABLE]: (format: unknown) => strftimeNow(String(format)),
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: opts.addGenerationPrompt,
        ...(opts.tools?.length ? { tools: opts.tools.map((f) => ({ type: 'function', function: f })) } : {}),
      });
    } catch (err) {
      // @huggingface/jinja provides raise_exception(); it throws a plain Error with the template's message.
      throw new InvalidArgumentError('messages', `the chat template rejected these messages: ${(err as Error).message}`);
    }
    if (typeof text !== 'string') throw new InvalidArgumentError('messages', 'the chat template did not produce text');
    return text;
  }
}

/** Characters a template has and a file path (almost) never has: vLLM's test of "inline or path". */
const JINJA_CHARS = /[{}\n]/;

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' };

/** Backslash escapes of a one-line shell argument (`\n`, `\t`, `\u00e9`), decoded as vLLM decodes them. */
function decodeEscapes(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[ntr\\'"])/g, (_, e: string) =>
    e.length > 1 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : ESCAPES[e],
  );
}

/**
 * The template a --chat-template value gives, as vLLM's load_chat_template reads it: the contents
 * of the file it names when that can be read, else the value itself, a Jinja template, with its
 * backslash escapes decoded (so a one-line shell argument can hold newlines). A value that cannot
 * be read and has no `{`, `}` or newline is taken for a mistyped path and refused. Throws (a plain
 * Error) when the template does not parse.
 */
export function chatTemplateArgument(value: string): { source: string; file?: string } {
  let source: string;
  let file: string | undefined;
  try {
    source = readFileSync(value, 'utf8');
    file = value;
  } catch (err) {
    if (!JINJA_CHARS.test(value)) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(
        `"${value}" looks like a file path, but it cannot be read (${reason}); give a readable file or an inline Jinja template`,
      );
    }
    source = decodeEscapes(value);
  }
  checkChatTemplate(source, file ? `the chat template in ${file}` : 'the chat template');
  return { source, file };
}

/** Throws (a plain Error naming `what`) when a template does not parse. */
export function checkChatTemplate(source: string, what = 'the chat template'): void {
  try {
    new Template(source);
  } catch (err) {
    throw new Error(`${what} does not parse: ${(err as Error).message}`);
  }
}
