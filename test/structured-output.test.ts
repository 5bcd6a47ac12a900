// The pure parts of structured output: spec checks and keys, the choice grammar's escaping, the
// token bitmask on logits (both samplers keep to it), and the REST fields' mapping.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readChatRequest } from '../src/adapter-openai/chat-request.ts';
import { readCompletionRequest } from '../src/adapter-openai/completion-request.ts';
import { OpenAIError } from '../src/adapter-openai/openai-error.ts';
import { mx } from '../src/engine/mlx.ts';
import { CpuSampler } from '../src/engine/sampler/cpu-sampler.ts';
import { Sampler, type SamplerRow } from '../src/engine/sampler/sampler.ts';
import { allowsAnyToken, maskLogitsRow } from '../src/engine/sampler/token-bitmask.ts';
import { defaultSamplingParams, InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { choiceGrammar, ebnfString, structuredOutputKey, validateStructuredOutput } from '../src/engine/structured-output.ts';
import { loadXGrammar } from '../src/engine/grammar/xgrammar-module.ts';

function bitmask(vocab: number, allowed: Iterable<number>): Int32Array {
  const m = new Int32Array(Math.ceil(vocab / 32));
  for (const id of allowed) m[id >> 5] |= 1 << (id & 31);
  return m;
}

describe('structured-output specs', () => {
  test('shape and size checks name the spec type as the field', () => {
    const refused = (spec: unknown, re: RegExp, field: string) =>
      assert.throws(
        () => validateStructuredOutput(spec as never),
        (e: unknown) => e instanceof InvalidArgumentError && e.field === field && re.test(e.message),
      );
    refused({ type: 'json_schema', schema: '{oops' }, /not valid JSON/, 'json_schema');
    refused({ type: 'json_schema', schema: '[1]' }, /must be a JSON object/, 'json_schema');
    refused({ type: 'regex', pattern: '' }, /non-empty/, 'regex');
    refused({ type: 'choice', choices: [] }, /at least one/, 'choice');
    refused({ type: 'choice', choices: ['a', ''] }, /non-empty/, 'choice');
    refused({ type: 'choice', choices: ['a\u0000b'] }, /NUL/, 'choice');
    refused({ type: 'grammar', ebnf: 'x'.repeat(300_000) }, /longer than/, 'grammar');
    refused({ type: 'yaml' }, /unknown structured output type/, 'yaml');
    validateStructuredOutput({ type: 'json_schema', schema: 'true' });
    validateStructuredOutput({ type: 'json_object' });
  });

  test('keys tell specs apart', () => {
    const keys = [
      structuredOutputKey({ type: 'regex', pattern: 'a' }),
      structuredOutputKey({ type: 'grammar', ebnf: 'a' }),
      structuredOutputKey({ type: 'choice', choices: ['a', 'b'] }),
      structuredOutputKey({ type: 'choice', choices: ['a,b'] }),
      structuredOutputKey({ type: 'json_object' }),
    ];
    assert.equal(new Set(keys).size, keys.length);
  });

  test('a choice grammar accepts exactly its strings, whatever characters they hold', async () => {
    // A byte vocabulary (one token per byte value) and XGrammar's own string check.
    const xg = loadXGrammar();
    await fc.assert(
      fc.asyncProperty(
        // NUL is refused by validateStructuredOutput (XGrammar reads C strings).
        fc.uniqueArray(
          fc.string({ minLength: 1, maxLength: 6, unit: 'binary' }).filter((c) => !c.includes('\u0000')),
          { minLength: 1, maxLength: 4 },
        ),
        async (choices) => {
          const grammar = await xg.Grammar.fromEBNF(choiceGrammar(choices));
          for (const c of choices) assert.ok(await xg.Testings.isGrammarAcceptString(grammar, c), JSON.stringify(c));
          assert.ok(!(await xg.Testings.isGrammarAcceptString(grammar, `${choices[0]}!`)));
          grammar.dispose();
        },
      ),
      { numRuns: 100 },
    );
    assert.equal(ebnfString('a"b\\c\n\u00010'), '"a\\"b\\\\c\\n\\u00010"');
  });
});

describe('token bitmask', () => {
  test('masks exactly the disallowed tokens, across word boundaries and a partial last word', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(fc.nat(), { maxLength: 20 }), (vocab, picks) => {
        const allowed = new Set(picks.map((p) => p % vocab));
        const logits = Float32Array.from({ length: vocab }, (_, i) => i);
        maskLogitsRow(logits, 0, vocab, bitmask(vocab, allowed));
        logits.forEach((v, i) => assert.equal(v, allowed.has(i) ? i : Number.NEGATIVE_INFINITY));
        assert.equal(allowsAnyToken(bitmask(vocab, allowed), vocab), allowed.size > 0);
      }),
    );
  });

  const V = 100;
  const row = (allowed: number[], extra: Partial<SamplerRow['params']> = {}, seed = 1): SamplerRow => ({
    params: { ...defaultSamplingParams(), ...extra },
    promptTokenIds: [1, 2],
    outputTokenIds: [],
    seed,
    allowedTokens: bitmask(V, allowed),
  });

  test('both samplers pick only allowed tokens, greedy or sampled, with bias and penalties; logprobs stay raw', () => {
    const cpu = new CpuSampler(V);
    const mlx = new Sampler(V);
    const values = Float32Array.from({ length: V }, (_, i) => Math.sin(i) * 3);
    const allowed = [3, 17, 64, 99];
    for (let seed = 0; seed < 30; seed++) {
      const rows = [
        row(allowed, { temperature: 0 }, seed),
        row(allowed, { temperature: 1 }, seed),
        row(allowed, { temperature: 1.5, topK: 3, topP: 0.9 }, seed),
        row(allowed, { temperature: 0.8, logitBias: { 5: 100, 64: -5 }, repetitionPenalty: 1.3, logprobs: true, topLogprobs: 2 }, seed),
        { ...row([], { temperature: 0 }, seed), allowedTokens: undefined },
      ];
      const logits = new Float32Array(V * rows.length);
      rows.forEach((_, r) => logits.set(values, r * V));
      const fromCpu = cpu.sample(logits.slice(), rows);
      const fromMlx = mlx.sample(mx.array(Array.from(logits)).reshape([rows.length, V]), rows);
      for (const out of [fromCpu, fromMlx]) {
        out.slice(0, 4).forEach((t) => assert.ok(allowed.includes(t.tokenId), `token ${t.tokenId}`));
        // The free row is unconstrained: the plain argmax.
        assert.equal(out[4].tokenId, values.indexOf(Math.max(...values)));
        const lp = out[3];
        const lse = Math.log(values.reduce((s, v) => s + Math.exp(v), 0));
        assert.ok(Math.abs((lp.logprob as number) - (values[lp.tokenId] - lse)) < 1e-4, 'the raw log probability');
        assert.equal(lp.topLogprobs?.length, 2);
      }
      assert.equal(fromCpu[0].tokenId, fromMlx[0].tokenId);
    }
  });
});

describe('REST structured-output fields', () => {
  const chat = (extra: Record<string, unknown>) => readChatRequest({ messages: [{ role: 'user', content: 'x' }], ...extra });
  const refused = (read: () => unknown, param: string, re: RegExp) =>
    assert.throws(read, (e: unknown) => e instanceof OpenAIError && e.param === param && re.test(e.message));

  test('response_format, guided_* and structured_outputs map to the proto oneof', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    const cases: [Record<string, unknown>, unknown, string | undefined][] = [
      [{ response_format: { type: 'text' } }, undefined, undefined],
      [{ response_format: { type: 'json_object' } }, { case: 'jsonObject', value: {} }, 'response_format'],
      [
        { response_format: { type: 'json_schema', json_schema: { name: 'a', schema, strict: true } } },
        { case: 'jsonSchema', value: JSON.stringify(schema) },
        'response_format',
      ],
      [{ guided_json: schema }, { case: 'jsonSchema', value: JSON.stringify(schema) }, 'guided_json'],
      [{ guided_json: '{"type": "string"}' }, { case: 'jsonSchema', value: '{"type": "string"}' }, 'guided_json'],
      [{ guided_regex: '\\d+' }, { case: 'regex', value: '\\d+' }, 'guided_regex'],
      [{ guided_choice: ['a', 'b'] }, { case: 'choice', value: { choices: ['a', 'b'] } }, 'guided_choice'],
      [{ guided_grammar: 'root ::= "a"' }, { case: 'grammar', value: 'root ::= "a"' }, 'guided_grammar'],
      [{ structured_outputs: { choice: ['x'] } }, { case: 'choice', value: { choices: ['x'] } }, 'structured_outputs'],
      [{ structured_outputs: { json_object: true } }, { case: 'jsonObject', value: {} }, 'structured_outputs'],
      [{ guided_regex: 'a', guided_decoding_backend: 'xgrammar' }, { case: 'regex', value: 'a' }, 'guided_regex'],
    ];
    for (const [extra, output, param] of cases) {
      const plan = chat(extra);
      assert.deepEqual(plan.sampling.structuredOutput, output, JSON.stringify(extra));
      assert.equal(plan.names.structuredOutput, param);
    }
    const completion = readCompletionRequest({ prompt: 'x', guided_choice: ['a'] });
    assert.deepEqual(completion.sampling.structuredOutput, { case: 'choice', value: { choices: ['a'] } });
  });

  test('malformed fields are refused naming the parameter', () => {
    refused(() => chat({ response_format: { type: 'xml' } }), 'response_format', /Supported values/);
    refused(() => chat({ response_format: 'json' }), 'response_format', /expected an object/);
    refused(() => chat({ response_format: { type: 'json_schema' } }), 'response_format', /json_schema/);
    refused(
      () => chat({ response_format: { type: 'json_schema', json_schema: { name: 'bad name', schema: {} } } }),
      'response_format',
      /name/,
    );
    refused(() => chat({ guided_choice: [] }), 'guided_choice', /non-empty array/);
    refused(() => chat({ guided_regex: 5 }), 'guided_regex', /a string/);
    refused(() => chat({ guided_json: [1] }), 'guided_json', /JSON schema object/);
    refused(() => chat({ structured_outputs: { regex: 'a', choice: ['b'] } }), 'structured_outputs', /Only one/);
    refused(() => chat({ guided_regex: 'a', response_format: { type: 'json_object' } }), 'guided_regex', /Only one/);
  });
});
