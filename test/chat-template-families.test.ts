// The chat templates of the model families people run render as transformers' apply_chat_template
// renders them, character for character: each fixture in test/fixtures/chat-templates/ holds what
// transformers rendered (scripts/reference/make_chat_template_fixtures.py) for a set of
// conversations, and each goes through Tokenizer.applyChatTemplate, the path serving takes (tool
// calls and results converted by messagesForToolTemplate). Apache-2.0/MIT templates are in the
// fixtures; Llama 3.x and Gemma templates, under their own licenses, are read from a llama.cpp
// checkout ($PEERS_DIR, default ~/.cache/mlx-batch-server-peers; bench/peers/setup.sh makes it) and
// those families are skipped with a message when it is absent. strftime-now.json holds what
// transformers' strftime_now global gives templates (Python's strftime, C locale).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, mock, test } from 'node:test';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { ChatTemplate } from '../src/text/chat-template.ts';
import type { ChatMessage } from '../src/text/generation.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { messagesForToolTemplate } from '../src/text/tool-calls/tool-messages.ts';
import type { TemplateMessage, ToolDefinition } from '../src/text/tool-calls/tool-types.ts';
import { tinyByteLevelMetadata } from './fixtures/tokenizer/tiny-vocabularies.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'chat-templates');
const PEERS_DIR = process.env.PEERS_DIR ?? join(homedir(), '.cache', 'mlx-batch-server-peers');
const LLAMA_CPP_TEMPLATES = join(PEERS_DIR, 'llama.cpp', 'models', 'templates');

interface FixtureCase {
  name: string;
  /** The messages transformers got, in its (OpenAI) shape. */
  messages: TemplateMessage[];
  tools?: ToolDefinition[];
  add_generation_prompt: boolean;
  expected?: string;
  /** The template refused the conversation (raise_exception) with this message. */
  error?: string;
  /** Why our rendering cannot match this one exactly (checked as KNOWN_DIFFERENCE says). */
  known_difference?: string;
}

interface Fixture {
  family: string;
  model: string;
  template_file: string;
  license: string;
  template_sha256: string;
  /** Present for Apache-2.0/MIT templates only. */
  template?: string;
  special_tokens: Record<string, string>;
  /** strftime_now's clock when transformers rendered, local time. */
  now: string;
  cases: FixtureCase[];
}

/** The chat messages a client would have sent for `messages`: tool calls with JSON text arguments. */
function chatMessages(messages: readonly TemplateMessage[]): ChatMessage[] {
  return messages.map((m) => {
    const out: ChatMessage = { role: m.role, content: m.content };
    if (m.tool_calls) {
      out.toolCalls = m.tool_calls.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments),
      }));
    }
    if (m.tool_call_id !== undefined) out.toolCallId = m.tool_call_id;
    if (m.name !== undefined) out.name = m.name;
    return out;
  });
}

/** The template source and why there is none (no llama.cpp checkout, or a different template there). */
/**
 * The cases marked known_difference hold the integral float 2.0 in a tool call's arguments:
 * JavaScript has one number type, so the argument is 2 and tojson writes it so, where Python
 * writes 2.0. Their rendering must equal transformers' with that one change.
 */
const KNOWN_DIFFERENCE = ['"days": 2.0', '"days": 2'] as const;

function templateOf(fixture: Fixture): { source?: string; skip: string | false } {
  let source = fixture.template;
  if (source === undefined) {
    const path = join(LLAMA_CPP_TEMPLATES, fixture.template_file);
    if (!existsSync(path)) {
      return { skip: `${fixture.license}: the template is not in the repository; needs llama.cpp's ${path}` };
    }
    source = readFileSync(path, 'utf8');
  }
  const sha256 = createHash('sha256').update(source).digest('hex');
  if (sha256 !== fixture.template_sha256) {
    if (fixture.template !== undefined) throw new Error(`${fixture.family}.json: its template does not match its sha256`);
    return {
      skip: `llama.cpp's ${fixture.template_file} is not the template the fixture was made from (sha256 ${sha256}); rerun scripts/reference/make_chat_template_fixtures.py`,
    };
  }
  return { source, skip: false };
}

function tokenizerFor(source: string, specialTokens: Record<string, string>): Tokenizer {
  // Any vocabulary will do: rendering reads only the template and the special tokens' strings.
  const { definition } = Tokenizer.fromGguf(tinyByteLevelMetadata());
  return new Tokenizer({ ...definition, chatTemplates: { default: source }, templateTokens: specialTokens, warnings: [] });
}

const STRFTIME_FIXTURE = 'strftime-now.json';

const fixtures: Fixture[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json') && f !== STRFTIME_FIXTURE)
  .sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as Fixture);

test('there are fixtures for the families people run', () => {
  assert.deepEqual(
    fixtures.map((f) => f.family),
    ['gemma2', 'llama3.1', 'llama3.2', 'mistral-nemo', 'phi3.5', 'qwen2.5', 'qwen3', 'smollm3'],
  );
  for (const f of fixtures) assert.equal(f.template === undefined, !['Apache-2.0', 'MIT'].includes(f.license), f.family);
});

for (const fixture of fixtures) {
  const { source, skip } = templateOf(fixture);
  describe(`${fixture.model} (${fixture.template_file}) renders as transformers does`, { skip }, () => {
    const tokenizer = source === undefined ? undefined : tokenizerFor(source, fixture.special_tokens);
    // strftime_now (Llama 3.2's "Today Date") reads the clock: pin it where the fixture was made.
    before(() => mock.timers.enable({ apis: ['Date'], now: new Date(fixture.now).getTime() }));
    after(() => mock.timers.reset());

    for (const c of fixture.cases) {
      test(c.name, () => {
        assert.ok(tokenizer);
        const messages = chatMessages(c.messages);
        const toolTurns = messages.some((m) => m.role === 'tool' || m.toolCalls?.length);
        // The template must get exactly the messages transformers got.
        if (toolTurns) assert.deepEqual(messagesForToolTemplate(messages), c.messages);
        const render = () => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: c.add_generation_prompt, tools: c.tools });
        if (c.error !== undefined) {
          const error = c.error;
          assert.throws(render, (e: Error) => e instanceof InvalidArgumentError && e.message.includes(error));
        } else if (c.known_difference !== undefined) {
          // Exactly transformers' text but for the one documented difference.
          const [python, ours] = KNOWN_DIFFERENCE;
          assert.ok(c.expected?.includes(python), c.known_difference);
          assert.equal(render(), c.expected?.replaceAll(python, ours));
        } else {
          assert.equal(render(), c.expected);
        }
      });
    }
  });
}

describe("strftime_now gives templates what transformers' gives them", () => {
  const { renders } = JSON.parse(readFileSync(join(FIXTURES, STRFTIME_FIXTURE), 'utf8')) as {
    renders: Record<string, Record<string, string>>;
  };
  const user = [{ role: 'user', content: '' }];
  after(() => mock.timers.reset());

  for (const [at, byFormat] of Object.entries(renders)) {
    test(at, () => {
      mock.timers.enable({ apis: ['Date'], now: new Date(at).getTime() });
      for (const [format, expected] of Object.entries(byFormat)) {
        const template = new ChatTemplate(`{{ strftime_now(${JSON.stringify(format)}) }}`, {});
        assert.equal(template.render(user, { addGenerationPrompt: false }), expected, format);
      }
      mock.timers.reset();
    });
  }

  test('in English whatever the process locale (Python strftime runs in the C locale)', (t) => {
    const code = `
      import { ChatTemplate } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'text', 'chat-template.ts'))};
      const now = new Date();
      const rendered = new ChatTemplate('{{ strftime_now("%b %B") }}', {}).render([{ role: 'user', content: '' }], { addGenerationPrompt: false });
      const march = new Intl.DateTimeFormat(undefined, { month: 'long' }).format(new Date(2026, 2, 15));
      console.log(JSON.stringify({ month: now.getMonth(), rendered, march }));`;
    const env = { ...process.env, LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' };
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', env });
    assert.equal(child.status, 0, child.stderr);
    const { month, rendered, march } = JSON.parse(child.stdout) as { month: number; rendered: string; march: string };
    // @huggingface/jinja's own strftime_now would write the locale's names (Mär, März).
    if (march !== 'März') return t.skip(`this Node.js does not take de_DE from LANG (March is ${march})`);
    const english = new Date(2026, month, 15).toLocaleString('en-US', { month: 'long' });
    assert.equal(rendered, `${english.slice(0, 3)} ${english}`);
  });
});
