// A model's sampling defaults: read from generation_config.json as vLLM reads them, applied by the
// service to the fields a request leaves unset (and only those), with max_new_tokens as the
// default max_tokens cut to the context the prompt leaves. The REST adapter leaves omitted fields
// unset so that the service can apply them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { readChatRequest } from '../src/adapter-openai/chat-request.ts';
import { readCompletionRequest } from '../src/adapter-openai/completion-request.ts';
import { SamplingParamsSchema } from '../src/gen/mlxserve/v1/sampling_pb.ts';
import { type ModelInfo, namesModel } from '../src/service/model-info.ts';
import { toSamplingParams, withDefaultMaxTokens } from '../src/service/request-mapping.ts';
import { generationDefaults, readGenerationDefaults } from '../src/text/generation-config.ts';
import type { GenerateRequest } from '../src/text/generation.ts';

describe('generation_config.json', () => {
  test('the fields vLLM reads become defaults; max_new_tokens is the default max_tokens; others are not read', () => {
    const { defaults, warnings } = generationDefaults(
      {
        temperature: 0.6,
        top_p: 0.9,
        top_k: 20,
        min_p: 0.05,
        repetition_penalty: 1.1,
        max_new_tokens: 512,
        do_sample: true,
        eos_token_id: [1, 2],
        bos_token_id: 1,
      },
      'generation_config.json',
    );
    assert.deepEqual(defaults, { temperature: 0.6, topP: 0.9, topK: 20, minP: 0.05, repetitionPenalty: 1.1, maxTokens: 512 });
    assert.deepEqual(warnings, []);
  });

  test("values equal to transformers' own defaults are dropped, as vLLM's to_diff_dict() drops them (top_k 50 is not a limit)", () => {
    const { defaults } = generationDefaults({ temperature: 1.0, top_p: 1.0, top_k: 50, repetition_penalty: 1.0, min_p: null }, 'g.json');
    assert.deepEqual(defaults, {});
    assert.deepEqual(generationDefaults({ top_k: 0, temperature: 0 }, 'g.json').defaults, { topK: 0, temperature: 0 });
  });

  test('a value out of range or of the wrong type is ignored with a warning naming the file and field', () => {
    const { defaults, warnings } = generationDefaults(
      { temperature: 3, top_p: 0, top_k: -5, min_p: '0.1', repetition_penalty: 0, max_new_tokens: 1.5 },
      '/m/generation_config.json',
    );
    assert.deepEqual(defaults, {});
    assert.equal(warnings.length, 6);
    assert.match(warnings[0], /^\/m\/generation_config\.json: temperature 3 is ignored; it must be a number in \[0, 2\]$/);
    assert.match(warnings.join('\n'), /max_new_tokens 1\.5 is ignored; it must be an integer/);
  });

  const dir = mkdtempSync(join(tmpdir(), 'generation-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a directory without the file has no defaults; a file that is not a JSON object is an error', async () => {
    assert.deepEqual(await readGenerationDefaults(dir), { defaults: {}, warnings: [] });
    writeFileSync(join(dir, 'generation_config.json'), '{"temperature": 0.7,');
    await assert.rejects(readGenerationDefaults(dir), /generation_config\.json is not valid JSON/);
    writeFileSync(join(dir, 'generation_config.json'), '[1]');
    await assert.rejects(readGenerationDefaults(dir), /must hold a JSON object/);
    writeFileSync(join(dir, 'generation_config.json'), '{"temperature": 0.7, "max_new_tokens": 64}');
    assert.deepEqual((await readGenerationDefaults(dir)).defaults, { temperature: 0.7, maxTokens: 64 });
  });
});

function model(over: Partial<ModelInfo> = {}): ModelInfo {
  return {
    id: 'm',
    architecture: 'llama',
    vocabSize: 100,
    contextLength: 64,
    hiddenSize: 8,
    numLayers: 1,
    kvBytesPerToken: 64,
    adapters: [],
    eosTokenIds: [1],
    hasChatTemplate: true,
    aliases: [],
    samplingDefaults: {},
    ...over,
  };
}

describe("the service applies a model's defaults to unset fields only", () => {
  const withDefaults = model({ samplingDefaults: { temperature: 0.6, topP: 0.9, topK: 20, minP: 0.05, repetitionPenalty: 1.1 } });

  test('unset fields take the model defaults, then the built-in ones', () => {
    const p = toSamplingParams(undefined, withDefaults);
    assert.deepEqual([p.temperature, p.topP, p.topK, p.minP, p.repetitionPenalty], [0.6, 0.9, 20, 0.05, 1.1]);
    assert.deepEqual([p.presencePenalty, p.frequencyPenalty, p.maxTokens], [0, 0, undefined]);
    const plain = toSamplingParams(undefined, model());
    assert.deepEqual([plain.temperature, plain.topP, plain.topK, plain.minP, plain.repetitionPenalty], [1, 1, 0, 0, 1]);
  });

  test('a field the request sets wins, zero and "off" included', () => {
    const s = create(SamplingParamsSchema, { temperature: 0, topP: 1, topK: -1, minP: 0, repetitionPenalty: 1 });
    const p = toSamplingParams(s, withDefaults);
    assert.deepEqual([p.temperature, p.topP, p.topK, p.minP, p.repetitionPenalty], [0, 1, 0, 0, 1]);
  });

  test("a model's top_k beyond the vocabulary keeps every token instead of refusing every request", () => {
    assert.equal(toSamplingParams(undefined, model({ samplingDefaults: { topK: 1000 } })).topK, 100);
  });

  test('max_new_tokens is the default max_tokens, cut to the context the prompt leaves; a request that gives one keeps it', () => {
    const m = model({ samplingDefaults: { maxTokens: 16 } });
    const request = (maxTokens?: number): GenerateRequest => ({
      id: 'r',
      input: { kind: 'tokens', tokenIds: [5] },
      sampling: toSamplingParams(create(SamplingParamsSchema, { maxTokens }), m),
    });
    assert.equal(withDefaultMaxTokens(request(), 10, m).sampling.maxTokens, 16);
    assert.equal(withDefaultMaxTokens(request(), 60, m).sampling.maxTokens, 4);
    assert.equal(withDefaultMaxTokens(request(40), 10, m).sampling.maxTokens, 40);
    assert.equal(withDefaultMaxTokens(request(), 10, model()).sampling.maxTokens, undefined);
  });

  test('a model is named by its id, an alias or "default"', () => {
    const m = model({ id: 'served', aliases: ['other'] });
    assert.deepEqual(
      ['served', 'other', 'default', 'm', 'Default'].map((n) => namesModel(m, n)),
      [true, true, true, false, false],
    );
  });
});

test('the REST adapter leaves omitted sampling fields (and null ones) unset, for the service to fill', () => {
  const chat = readChatRequest({ model: 'x', messages: [{ role: 'user', content: 'hi' }], temperature: null });
  const completion = readCompletionRequest({ model: 'x', prompt: 'hi' });
  for (const { sampling } of [chat, completion]) {
    assert.deepEqual(
      [sampling.temperature, sampling.topP, sampling.topK, sampling.minP, sampling.repetitionPenalty],
      [undefined, undefined, undefined, undefined, undefined],
    );
  }
  assert.equal(chat.sampling.maxTokens, undefined);
  // Completions keep OpenAI's (and vLLM's) own default of 16.
  assert.equal(completion.sampling.maxTokens, 16);
});
