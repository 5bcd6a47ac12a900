// The benchmark client against a real server (engine, gRPC service and OpenAI adapter) on a tiny
// random-weight model: the reports' shape and their numbers agree with what was asked and what the
// server says it did. Plus the pure parts: prompt sizing, datasets, percentiles, option errors.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runBenchmark, requestsFor, type BenchmarkOptions } from '../bench/client/benchmark.ts';
import { cpuSnapshot, otherCpuBetween } from '../bench/client/other-cpu.ts';
import { distribution, percentile } from '../bench/client/percentiles.ts';
import { countPromptTokens, loadPromptTokenizer, type PromptTokenizer } from '../bench/client/prompt-tokenizer.ts';
import { headlineOf, markdownReport, type BenchReport } from '../bench/client/report.ts';
import { DatasetError, parseShareGpt } from '../bench/client/sharegpt.ts';
import { buildWorkload } from '../bench/client/workload.ts';
import type { RunningServer } from '../src/cli/serve.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

const PROMPT_TOKENS = 160; // the tiny tokenizer has one token per byte: template and instruction take up to ~130
const MAX_TOKENS = 6;

let modelDir: string;
let server: RunningServer;
let full: FullServer;
let tok: PromptTokenizer;
let outDir: string;

before(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'bench-client-'));
  full = await startFullServer({ engine: { batchSize: 8 } });
  server = full.server;
  modelDir = full.modelDir;
  tok = await loadPromptTokenizer(modelDir);
});

after(async () => {
  await full?.close();
  rmSync(outDir, { recursive: true, force: true });
});

function options(overrides: Partial<BenchmarkOptions>): BenchmarkOptions {
  return {
    endpoint: 'openai',
    url: `http://127.0.0.1:${server.adapter.port}`,
    levels: [1, 2],
    requests: { fixed: 3 },
    stream: true,
    temperature: 0,
    eos: 'ignore',
    promptFormat: 'chat',
    promptTokens: PROMPT_TOKENS,
    maxTokens: MAX_TOKENS,
    seed: 1,
    warmup: 1,
    warmupMaxTokens: 2,
    timeoutMs: 60_000,
    load: { maxLoad: 0, timeoutS: 0, pollS: 1 },
    retries: 0,
    progress: false,
    label: 'test',
    command: 'test',
    ...overrides,
  };
}

/** What every streamed run must satisfy, whatever the endpoint. */
function checkStreamedReport(report: BenchReport, levels: number[], requests: number) {
  const exactTokens = report.settings.endpoint === 'grpc';
  assert.deepEqual(
    report.runs.map((r) => r.concurrency),
    levels,
  );
  for (const r of report.runs) {
    assert.equal(r.requests, requests);
    assert.equal(r.completed, requests, `c${r.concurrency}: ${r.errorSamples.join('; ')}`);
    assert.equal(r.errors, 0);
    assert.equal(r.shortOutputs, 0);
    // The server generated exactly what was asked, and counted the prompt exactly as the client sized it.
    assert.equal(r.outputTokens, requests * MAX_TOKENS);
    assert.equal(r.inputTokens, requests * PROMPT_TOKENS);
    assert.ok(r.durationS > 0);
    assert.ok(Math.abs(r.outputTokPerS - r.outputTokens / r.durationS) < 1e-6);
    assert.ok(Math.abs(r.requestsPerS - r.completed / r.durationS) < 1e-6);
    assert.equal(r.ttftMs.count, requests);
    assert.equal(r.e2eMs.count, requests);
    // gRPC deltas say how many tokens they carry: every token after the first has one inter-token
    // latency. OpenAI chunks do not (a chunk may hold several tokens, e.g. while a UTF-8 character is incomplete).
    if (exactTokens) assert.equal(r.itlMs.count, requests * (MAX_TOKENS - 1));
    else assert.ok(r.itlMs.count > 0 && r.itlMs.count <= requests * (MAX_TOKENS - 1));
    assert.equal(r.tpotMs.count, requests);
    for (const d of [r.ttftMs, r.itlMs, r.tpotMs, r.e2eMs]) {
      assert.ok(
        (d.p50 as number) >= 0 &&
          (d.p50 as number) <= (d.p90 as number) &&
          (d.p90 as number) <= (d.p99 as number) &&
          (d.p99 as number) <= (d.max as number),
      );
    }
    // A request's first token cannot come after its end, and the run lasts at least as long as its longest request.
    assert.ok((r.ttftMs.max as number) <= (r.e2eMs.max as number));
    assert.ok((r.e2eMs.max as number) <= r.durationS * 1000 + 1e-6);
  }
}

test('OpenAI endpoint, streaming, two concurrency levels: token counts, percentiles and throughput add up', async () => {
  const report = await runBenchmark(options({}), tok);
  checkStreamedReport(report, [1, 2], 3);
  assert.equal(report.settings.model, server.model.id, 'the model name comes from /v1/models');
  assert.equal(report.headline, undefined, 'no c8 level, no headline');
  const md = markdownReport(report);
  assert.match(md, /\| concurrency \| requests \| errors \| output tok\/s/);
  assert.equal(md.split('\n').filter((l) => /^\| [12] \| 3\/3 \| 0 \|/.test(l)).length, 2);
});

test('gRPC endpoint, streaming and not: the same counts; TTFT and ITL only when streamed', async () => {
  const url = `http://127.0.0.1:${server.grpc.port}`;
  const streamed = await runBenchmark(options({ endpoint: 'grpc', url, levels: [2], requests: { fixed: 2 } }), tok);
  checkStreamedReport(streamed, [2], 2);
  const whole = await runBenchmark(options({ endpoint: 'grpc', url, levels: [1], requests: { fixed: 2 }, stream: false }), tok);
  const r = whole.runs[0];
  assert.equal(r.completed, 2);
  assert.equal(r.outputTokens, 2 * MAX_TOKENS);
  assert.equal(r.ttftMs.count, 0);
  assert.equal(r.itlMs.count, 0);
  assert.equal(r.e2eMs.count, 2);
});

test('--eos bias keeps outputs at max_tokens through logit_bias; a server error counts as an error, not a crash', async () => {
  const biased = await runBenchmark(options({ levels: [1], requests: { fixed: 2 }, eos: 'bias' }), tok);
  assert.equal(biased.runs[0].outputTokens, 2 * MAX_TOKENS);
  assert.equal(biased.runs[0].errors, 0);
  // A model the server does not serve: every request fails with the server's answer.
  const failing = await runBenchmark(options({ levels: [1], requests: { fixed: 2 }, warmup: 0, model: 'no-such-model' }), tok);
  assert.equal(failing.runs[0].errors, 2);
  assert.equal(failing.runs[0].completed, 0);
  assert.match(failing.runs[0].errorSamples[0], /no-such-model|model/i);
});

/** Runs the CLI without blocking this process (which serves the requests). */
function cli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/bench-client.ts', ...args],
      { encoding: 'utf8', timeout: 120_000 },
      (err, _stdout, stderr) => {
        resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
      },
    );
  });
}

test('the CLI writes JSON, markdown and an SVG chart for a sweep, and names a bad option', async () => {
  const out = join(outDir, 'bench-cli');
  const ok = await cli([
    '--endpoint',
    'grpc',
    '--url',
    `http://127.0.0.1:${server.grpc.port}`,
    '--tokenizer',
    modelDir,
    '--sweep',
    '1,2',
    '--requests',
    '2',
    '--prompt-tokens',
    String(PROMPT_TOKENS),
    '--max-tokens',
    '3',
    '--warmup',
    '0',
    '--out',
    out,
    '--quiet',
  ]);
  assert.equal(ok.status, 0, ok.stderr);
  const report = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as BenchReport;
  assert.deepEqual(
    report.runs.map((r) => [r.concurrency, r.completed, r.outputTokens]),
    [
      [1, 2, 6],
      [2, 2, 6],
    ],
  );
  assert.match(readFileSync(`${out}.md`, 'utf8'), /!\[throughput and TTFT against concurrency\]\(bench-cli\.svg\)/);
  const svg = readFileSync(`${out}.svg`, 'utf8');
  assert.match(svg, /^<svg /);
  assert.match(svg, /output tok\/s/);

  const bad = await cli(['--concurrency', '0']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--concurrency must be a positive integer/);
  const badEos = await cli(['--eos', 'maybe']);
  assert.notEqual(badEos.status, 0);
  assert.match(badEos.stderr, /--eos/);
});

test('synthetic prompts have exactly --prompt-tokens tokens, differ from each other and repeat for a seed', () => {
  for (const format of ['chat', 'text'] as const) {
    const spec = { format, promptTokens: 120, maxTokens: 4, seed: 3 };
    const a = buildWorkload(tok, spec, 6);
    assert.deepEqual(
      a.map((r) => r.promptTokens),
      Array(6).fill(120),
    );
    assert.deepEqual(
      a.map((r) => countPromptTokens(tok, r.body)),
      Array(6).fill(120),
    );
    assert.equal(new Set(a.map((r) => JSON.stringify(r.body))).size, 6);
    assert.deepEqual(buildWorkload(tok, spec, 6), a);
    assert.notDeepEqual(buildWorkload(tok, { ...spec, seed: 4 }, 6), a);
  }
  assert.throws(() => buildWorkload(tok, { format: 'chat', promptTokens: 10, seed: 0 }, 1), /--prompt-tokens 10 is shorter/);
});

test('ShareGPT datasets: first human turn as prompt, reply length as output length, clear errors', () => {
  const data = [
    {
      conversations: [
        { from: 'human', value: 'Tell me about tides and the moon.' },
        { from: 'gpt', value: 'Tides follow the moon.' },
      ],
    },
    {
      conversations: [
        { from: 'system', value: 'be brief' },
        { from: 'human', value: 'What is a river delta?' },
        { from: 'gpt', value: 'Land at a river mouth.' },
      ],
    },
    {
      messages: [
        { role: 'user', content: 'Name three colours.' },
        { role: 'assistant', content: 'Red, green, blue.' },
      ],
    },
    { conversations: [{ from: 'gpt', value: 'no human turn here' }] },
  ];
  const entries = parseShareGpt(JSON.stringify(data));
  assert.equal(entries.length, 3);
  assert.deepEqual(entries[1], { prompt: 'What is a river delta?', reply: 'Land at a river mouth.' });
  const workload = buildWorkload(tok, { format: 'chat', dataset: entries, seed: 0 }, 3);
  for (const r of workload) {
    const entry = entries.find((e) => r.body.kind === 'chat' && r.body.messages[0].content === e.prompt);
    assert.ok(entry);
    assert.equal(r.maxTokens, tok.encode(entry.reply as string, { addSpecialTokens: false }).length);
    assert.equal(r.promptTokens, countPromptTokens(tok, r.body));
  }
  assert.throws(() => buildWorkload(tok, { format: 'chat', dataset: entries, seed: 0 }, 4), DatasetError);
  assert.throws(() => parseShareGpt('{"a": 1}'), /must be a JSON array/);
  assert.throws(() => parseShareGpt('[{"conversations": 3}]'), /\[0\]\.conversations must be a list/);
  assert.throws(() => parseShareGpt('not json'), /not valid JSON/);
  const datasetFile = join(outDir, 'sharegpt.json');
  writeFileSync(datasetFile, JSON.stringify(data));
  assert.equal(parseShareGpt(readFileSync(datasetFile, 'utf8'), datasetFile).length, 3);
});

test('percentiles, request counts and the headline ratio', () => {
  assert.equal(percentile([1, 2, 3, 4, 5], 50), 3);
  assert.equal(percentile([10, 20], 90), 19);
  assert.deepEqual(distribution([]), { count: 0, mean: null, p50: null, p90: null, p99: null, max: null });
  assert.deepEqual(distribution([3, 1, 2]), { count: 3, mean: 2, p50: 2, p90: 2.8, p99: 2.98, max: 3 });
  assert.equal(requestsFor({ fixed: 5 }, 16), 5);
  assert.equal(requestsFor({ perSlot: 2, atLeast: 4 }, 1), 4);
  assert.equal(requestsFor({ perSlot: 2, atLeast: 4 }, 16), 32);
  const run = (concurrency: number, outputTokPerS: number) => ({ concurrency, outputTokPerS }) as BenchReport['runs'][number];
  assert.deepEqual(headlineOf([run(1, 20), run(8, 130)]), { c1OutputTokPerS: 20, c8OutputTokPerS: 130, ratio: 6.5, target: 6 });
  assert.equal(headlineOf([run(1, 20), run(2, 30)]), undefined);
});

test('CPU taken by other processes during a level is measured, and a busy level is measured again', {
  skip: process.platform !== 'linux' && 'reads /proc',
}, async () => {
  const before = cpuSnapshot();
  assert.ok(before && before.machineBusyS > 0 && before.measuredS > 0);
  assert.deepEqual(otherCpuBetween({ machineBusyS: 10, measuredS: 4 }, { machineBusyS: 13, measuredS: 5 }, 4), {
    cpuSeconds: 2,
    cores: 0.5,
  });
  assert.equal(otherCpuBetween(undefined, before, 1), null);
  // A busy process outside this process tree (its parent shell exits at once, so it is re-parented).
  const spinner = Number(
    execFileSync('sh', ['-c', `${JSON.stringify(process.execPath)} -e "for(;;){}" >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim(),
  );
  try {
    const report = await runBenchmark(options({ levels: [1], requests: { fixed: 4 }, maxOtherCores: 0.05, retries: 1 }), tok);
    const run = report.runs[0];
    assert.equal(run.attempts, 2, 'the level was run again');
    assert.ok(run.otherCpu && run.otherCpu.cores > 0.2, `other processes: ${JSON.stringify(run.otherCpu)}`);
    assert.equal(run.completed, 4);
    assert.match(markdownReport(report), /best of 2 attempts/);
  } finally {
    process.kill(spinner, 'SIGKILL');
  }
});
