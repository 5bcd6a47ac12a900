// Constrained decoding in the engine, on both CPU paths, with the real grammar worker (XGrammar)
// over a tiny random model: whatever the weights prefer, every output follows its format, free
// requests batched with constrained ones are unchanged, and bad formats are refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import type { TokenConstraint, ConstraintProvider } from '../src/engine/grammar/grammar-matchers.ts';
import { GrammarMatchers } from '../src/engine/grammar/grammar-matchers.ts';
import type { StructuredOutput } from '../src/engine/structured-output.ts';
import { grammarVocabulary } from '../src/text/grammar-vocabulary.ts';
import { CPU_KERNELS, EngineHarness } from './helpers/engine-harness.ts';
import { TINY_SPECIAL, writeTinyModel } from './helpers/tiny-model.ts';

const SCHEMA = {
  type: 'object',
  properties: {
    kind: { enum: ['cat', 'dog', 'fish'] },
    age: { type: 'integer', minimum: 0, maximum: 30 },
    ok: { type: 'boolean' },
    tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 },
  },
  required: ['kind', 'age', 'ok', 'tags'],
};
const schema: StructuredOutput = { type: 'json_schema', schema: JSON.stringify(SCHEMA) };
const validate = new Ajv().compile(SCHEMA);
const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 37 + seed * 11) % 256);

describe('structured output in the engine', () => {
  let dir: string;
  const grammars: GrammarMatchers[] = [];
  before(() => {
    dir = writeTinyModel({ seed: 3 });
  });
  after(async () => {
    await Promise.all(grammars.map((g) => g.close()));
  });

  async function harness(cpuKernels: (typeof CPU_KERNELS)[number], opts = {}) {
    const h = await EngineHarness.load(dir, { cpuKernels, prefixCache: false, ...opts });
    const g = new GrammarMatchers(grammarVocabulary(h.tokenizer, h.model.config.vocabSize));
    grammars.push(g);
    h.core.constraints = g;
    return h;
  }

  for (const cpuKernels of CPU_KERNELS) {
    test(`${cpuKernels}: outputs follow their formats, greedy and sampled, batched with free requests`, async () => {
      const h = await harness(cpuKernels);
      const free = (await harness(cpuKernels)).generate(prompt(9, 1), { maxTokens: 24, ignoreEos: true });
      const ids = [
        h.submit(prompt(12, 2), { maxTokens: 60, structuredOutput: schema }),
        h.submit(prompt(9, 1), { maxTokens: 24, ignoreEos: true }),
        h.submit(prompt(7, 3), { maxTokens: 60, temperature: 1, seed: 5, structuredOutput: schema }),
        h.submit(prompt(5, 4), {
          maxTokens: 20,
          temperature: 1,
          seed: 6,
          structuredOutput: { type: 'choice', choices: ['yes', 'no', 'maybe so'] },
        }),
        h.submit(prompt(6, 5), { maxTokens: 20, structuredOutput: { type: 'regex', pattern: '[a-c]{2,4}-[0-9]{3}' } }),
        h.submit(prompt(8, 6), {
          maxTokens: 40,
          topK: 5,
          temperature: 0.9,
          seed: 2,
          structuredOutput: { type: 'grammar', ebnf: 'root ::= "(" [xy]* ")"' },
        }),
      ];
      await h.settle(ids);
      const [greedy, plain, sampled, choice, regex, ebnf] = ids.map((id) => h.result(id));
      for (const r of [greedy, sampled]) {
        assert.equal(r.finishReason, 'stop', r.text);
        assert.ok(validate(JSON.parse(r.text)), r.text);
      }
      assert.deepEqual(plain.tokenIds, free.tokenIds, 'a free request batched with constrained ones is unchanged');
      assert.ok(['yes', 'no', 'maybe so'].includes(choice.text), choice.text);
      assert.match(regex.text, /^[a-c]{2,4}-[0-9]{3}$/);
      // The grammar ends when the closing parenthesis comes, or max_tokens cuts it: either way a prefix.
      assert.match(ebnf.text, ebnf.finishReason === 'stop' ? /^\([xy]*\)$/ : /^\([xy]*$/);
      // The end-of-sequence token (a stop token) ends each finished constrained output.
      assert.ok([TINY_SPECIAL.eos, TINY_SPECIAL.imEnd].includes(greedy.stopReason as 257 | 259));
    });
  }

  test('json_object, max_tokens cutting a JSON object, logprobs and a seed', async () => {
    const h = await harness('native');
    const obj = h.submit(prompt(10, 7), { maxTokens: 80, temperature: 0.7, seed: 1, structuredOutput: { type: 'json_object' } });
    const cut = h.submit(prompt(10, 8), { maxTokens: 4, structuredOutput: schema, logprobs: true, topLogprobs: 2 });
    const again = h.submit(prompt(10, 7), { maxTokens: 80, temperature: 0.7, seed: 1, structuredOutput: { type: 'json_object' } });
    await h.settle([obj, cut, again]);
    const o = h.result(obj);
    if (o.finishReason === 'stop') assert.equal(typeof JSON.parse(o.text), 'object');
    else assert.ok(o.text.startsWith('{'));
    assert.deepEqual(h.result(again).tokenIds, o.tokenIds, 'the same seed gives the same constrained output');
    const c = h.result(cut);
    assert.equal(c.finishReason, 'length');
    assert.equal(c.tokenIds.length, 4);
    assert.equal(c.text, '{"ki', 'one byte per token in the tiny vocabulary');
    const logprobs = c.events.flatMap((e) => (e.type === 'delta' ? (e.logprobs ?? []) : []));
    assert.equal(logprobs.length, 4);
    for (const l of logprobs) assert.ok(l.logprob <= 0 && l.top.length === 2);
  });

  test('JSON strings never hold raw control characters, also with maxLength (which XGrammar lets through)', async () => {
    // The tiny vocabulary has a token for every byte, control characters included, and random
    // weights that pick them freely at a high temperature.
    const named = {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 12 }, note: { type: 'string', maxLength: 6 } },
      required: ['name', 'note'],
    };
    const h = await harness('native');
    const ids = Array.from({ length: 6 }, (_, seed) =>
      h.submit(prompt(6, seed), {
        maxTokens: 60,
        temperature: 1.5,
        seed,
        structuredOutput: { type: 'json_schema', schema: JSON.stringify(named) },
      }),
    );
    ids.push(h.submit(prompt(6, 9), { maxTokens: 60, temperature: 1.5, seed: 9, structuredOutput: { type: 'json_object' } }));
    await h.settle(ids);
    for (const id of ids) {
      const r = h.result(id);
      assert.ok(![...r.text].some((c) => (c.codePointAt(0) as number) < 0x20), JSON.stringify(r.text));
      if (r.finishReason === 'stop') JSON.parse(r.text);
    }
  });

  test('a format that does not compile is refused naming its field; the engine goes on', async () => {
    const h = await harness('native');
    const bad = h.submit(prompt(5, 1), { structuredOutput: { type: 'json_schema', schema: '{"type": "bogus"}' } });
    const badRegex = h.submit(prompt(5, 1), { structuredOutput: { type: 'regex', pattern: '(' } });
    const good = h.submit(prompt(5, 1), { maxTokens: 30, structuredOutput: { type: 'choice', choices: ['a', 'b'] } });
    await h.settle([bad, badRegex, good]);
    assert.equal(h.result(bad).error?.code, 'invalid_argument');
    assert.equal(h.result(bad).error?.field, 'json_schema');
    assert.match(h.result(bad).error?.message ?? '', /Unsupported type "bogus"/);
    assert.equal(h.result(badRegex).error?.field, 'regex');
    assert.match(h.result(badRegex).error?.message ?? '', /parenthesis/);
    assert.ok(['a', 'b'].includes(h.result(good).text));
  });

  test('a request cancelled while its grammar compiles ends cancelled', async () => {
    const h = await harness('native');
    const id = h.submit(prompt(5, 1), { structuredOutput: { type: 'regex', pattern: '[0-9]{5}' } });
    h.core.cancel(id);
    await h.settle([id]);
    assert.equal(h.result(id).finishReason, 'cancelled');
    assert.equal(h.result(id).tokenIds.length, 0);
  });

  test('without stop tokens (ignore_eos) the output ends where the grammar does', async () => {
    const h = await harness('native');
    const r = h.submit(prompt(5, 1), { ignoreEos: true, maxTokens: 50, structuredOutput: { type: 'choice', choices: ['abc'] } });
    await h.settle([r]);
    assert.equal(h.result(r).text, 'abc');
    assert.equal(h.result(r).finishReason, 'stop');
  });

  test('native path: a row whose mask waits on a compile sits out steps; the others decode on', async () => {
    // A provider whose constraint allows everything but reports itself blocked for its first
    // steps, as a row does while the worker compiles another request's grammar.
    let blockedSteps = 3;
    const allowAll = new Int32Array(Math.ceil(260 / 32)).fill(-1);
    const constraint: TokenConstraint = {
      get ready() {
        return blockedSteps === 0;
      },
      get blocked() {
        return blockedSteps > 0;
      },
      allowedTokens: () => allowAll,
      accept: () => {},
      ended: false,
      failed: false,
      close: () => {},
    };
    const provider: ConstraintProvider = { open: async () => constraint, close: async () => {} };
    const h = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false });
    const alone = (await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false })).generate(prompt(6, 2), {
      maxTokens: 8,
      ignoreEos: true,
    });
    h.core.constraints = provider;
    const held = h.submit(prompt(6, 2), { maxTokens: 8, ignoreEos: true, structuredOutput: { type: 'json_object' } });
    const other = h.submit(prompt(7, 3), { maxTokens: 8, ignoreEos: true });
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Prefill both and sample their first tokens (the prefill step samples before checking blocked).
    h.core.step();
    const first = h.result(held).tokenIds.length;
    for (let i = 0; i < 3; i++) {
      h.core.step();
      blockedSteps--;
    }
    assert.equal(h.result(held).tokenIds.length, first, 'the blocked row produced nothing while blocked');
    assert.ok(h.result(other).tokenIds.length >= first + 3, 'the other row decoded every step');
    await h.settle([held, other]);
    assert.deepEqual(h.result(held).tokenIds, alone.tokenIds, 'the held row resumes exactly where it stopped');
  });
});
