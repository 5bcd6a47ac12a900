// Benchmark client for OpenAI-compatible servers (this one, llama.cpp's llama-server,
// mlx_lm.server, vLLM, ...) and for this server's gRPC API: output tok/s, requests/s, TTFT, ITL,
// TPOT and end-to-end latency at p50/p90/p99, over one concurrency level or a sweep.
//
//   node --import tsx bench/bench-client.ts [options]
//     --concurrency 8                         one level
//     --sweep [1,2,4,8,16,32]                 several levels → markdown table + SVG chart
//     --headline                              c1 and c8, and the ratio of their aggregate tok/s
//
// Writes <out>.json (every figure) and <out>.md (summary; plus <out>.svg for several levels) and
// prints the markdown. Prompts are sized with the model's tokenizer (--tokenizer), so every server
// of the same model gets the same number of prompt tokens; outputs are exactly --max-tokens long
// (ignore_eos, or an EOS logit bias for servers without it: --eos bias).
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describeRequestCount, runBenchmark, type BenchmarkOptions, type RequestCount } from './client/benchmark.ts';
import { sweepChartSvg } from './client/chart.ts';
import { loadPromptTokenizer } from './client/prompt-tokenizer.ts';
import { markdownReport } from './client/report.ts';
import { readShareGpt } from './client/sharegpt.ts';
import { commandLine, shareablePaths } from './client/command-line.ts';

const DEFAULT_SWEEP = [1, 2, 4, 8, 16, 32];

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got "${v}"`);
    return n;
  };
}

function levelList(v: string): number[] {
  const levels = v.split(',').map((s) => s.trim());
  return levels.map((s) => positiveInt('--sweep levels')(s));
}

/** "64" → 64 requests per level; "2x" → 2 per concurrency slot (at least 4). */
function requestCount(v: string): RequestCount {
  const per = /^(\d+)x$/.exec(v.trim());
  if (per) return { perSlot: positiveInt('--requests')(per[1]), atLeast: 4 };
  return { fixed: positiveInt('--requests')(v) };
}

const program = new Command()
  .name('bench-client')
  .description('Benchmark an LLM server: throughput, TTFT, ITL and latency percentiles at one or more concurrency levels')
  .addOption(new Option('--endpoint <kind>', 'API to call').choices(['openai', 'grpc']).default('openai'))
  .option('--url <url>', 'server address (default http://127.0.0.1:8080 for openai, http://127.0.0.1:50051 for grpc)')
  .option('--model <name>', 'model name to request (openai default: the first of /v1/models; grpc: the server default)')
  .option('--api-key <key>', 'API key, if the server requires one')
  .option(
    '--tokenizer <spec>',
    "model whose tokenizer sizes the prompts: GGUF file, HF directory or hub id (default: the server's default model)",
  )
  .option('--concurrency <n>', 'requests in flight at once', positiveInt('--concurrency'), 1)
  .option('--sweep [levels]', `run several concurrency levels (default ${DEFAULT_SWEEP.join(',')})`, levelList)
  .option('--headline', "the seed's headline check: c1 and c8, and c8 aggregate tok/s divided by c1")
  .option('--headline-target <x>', 'the c8/c1 ratio the headline is judged against', nonNegativeNumber('--headline-target'), 6)
  .option(
    '--requests <n>',
    'measured requests per level: a number, or "<k>x" for k per concurrency slot (at least 4)',
    requestCount,
    requestCount('2x'),
  )
  .option('--stream', 'stream the answers (needed for TTFT and ITL)', true)
  .option('--no-stream', 'ask for whole answers')
  .addOption(new Option('--prompt-format <format>', 'chat messages or raw text').choices(['chat', 'text']).default('chat'))
  .option(
    '--prompt-tokens <n>',
    'exact prompt length in tokens, chat template included (synthetic default 128; a dataset keeps its lengths unless given)',
    positiveInt('--prompt-tokens'),
  )
  .option(
    '--max-tokens <n>',
    "exact output length (default 128; with --dataset: each reference reply's length)",
    positiveInt('--max-tokens'),
  )
  .addOption(
    new Option(
      '--eos <mode>',
      'how outputs are kept to max-tokens: ignore_eos field, logit bias on EOS (servers without ignore_eos), or natural stops',
    )
      .choices(['ignore', 'bias', 'natural'])
      .default('ignore'),
  )
  .option('--temperature <t>', 'sampling temperature', nonNegativeNumber('--temperature'), 0)
  .option('--dataset <file>', 'ShareGPT-style JSON file of conversations instead of the built-in prompts')
  .option('--warmup <n>', "warm-up requests before each level (default: the level's concurrency)", nonNegativeInt('--warmup'))
  .option('--warmup-max-tokens <n>', 'output tokens of each warm-up request', positiveInt('--warmup-max-tokens'), 16)
  .option('--seed <n>', 'seed of the prompt set', nonNegativeInt('--seed'), 0)
  .option('--timeout <s>', 'per-request deadline in seconds', positiveInt('--timeout'), 1800)
  .option(
    '--max-load <l>',
    'before each level wait until the 1-minute load average is below this (0: do not wait)',
    nonNegativeNumber('--max-load'),
    0,
  )
  .option(
    '--load-timeout <minutes>',
    'stop waiting for a low load after this long and run anyway (noted in the results)',
    nonNegativeNumber('--load-timeout'),
    20,
  )
  .option('--load-poll <s>', 'seconds between load checks', positiveInt('--load-poll'), 30)
  .option(
    '--server-pid <pid>',
    "the server's process id, when it runs on this machine: its CPU is then told apart from other processes'",
    positiveInt('--server-pid'),
  )
  .option(
    '--max-other-cores <x>',
    'run a level again when other processes averaged more than this many cores during it (needs --server-pid for a local server)',
    nonNegativeNumber('--max-other-cores'),
  )
  .option('--retries <n>', 'how many times a level may be run again (with --max-other-cores)', nonNegativeInt('--retries'), 2)
  .option('--server-info <text>', 'how the server was started (command, versions), recorded in the results')
  .option('--label <name>', 'name of the server/configuration in the results (default: the endpoint)')
  .option(
    '--out <prefix>',
    'write <prefix>.json, <prefix>.md (and <prefix>.svg for several levels); default bench/results/bench-<label>[-sweep|-headline]',
  )
  .option('--no-progress', 'no progress bar')
  .option('--quiet', 'do not print the markdown summary')
  .parse();

interface CliOptions {
  endpoint: 'openai' | 'grpc';
  url?: string;
  model?: string;
  apiKey?: string;
  tokenizer?: string;
  concurrency: number;
  sweep?: number[] | true;
  headline?: boolean;
  headlineTarget: number;
  requests: RequestCount;
  stream: boolean;
  promptFormat: 'chat' | 'text';
  promptTokens?: number;
  maxTokens?: number;
  eos: 'ignore' | 'bias' | 'natural';
  temperature: number;
  dataset?: string;
  warmup?: number;
  warmupMaxTokens: number;
  seed: number;
  timeout: number;
  maxLoad: number;
  loadTimeout: number;
  loadPoll: number;
  serverPid?: number;
  maxOtherCores?: number;
  retries: number;
  serverInfo?: string;
  label?: string;
  out?: string;
  progress: boolean;
  quiet?: boolean;
}

/** The command as run, minus --server-info (recorded on its own). */
function commandLineWithoutServerInfo(argv: string[]): string {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--server-info') i++;
    else if (!argv[i].startsWith('--server-info=')) args.push(argv[i]);
  }
  return commandLine('bench/bench-client.ts', args);
}

async function main(): Promise<void> {
  const o = program.opts<CliOptions>();
  if (o.sweep && o.headline) program.error('error: give --sweep or --headline, not both');
  const levels = o.headline ? [1, 8] : o.sweep === true ? DEFAULT_SWEEP : (o.sweep ?? [o.concurrency]);
  const mode = o.headline ? '-headline' : levels.length > 1 ? '-sweep' : '';
  const label = o.label ?? o.endpoint;
  const out = o.out ?? join(import.meta.dirname, 'results', `bench-${label.replace(/[^A-Za-z0-9._-]+/g, '-')}${mode}`);
  const url = o.url ?? (o.endpoint === 'grpc' ? 'http://127.0.0.1:50051' : 'http://127.0.0.1:8080');
  const log = (line: string) => process.stderr.write(`bench-client: ${line}\n`);

  const tokenizer = await loadPromptTokenizer(o.tokenizer);
  const options: BenchmarkOptions = {
    endpoint: o.endpoint,
    url,
    model: o.model,
    apiKey: o.apiKey,
    levels,
    requests: o.requests,
    stream: o.stream,
    temperature: o.temperature,
    eos: o.eos,
    promptFormat: o.promptFormat,
    promptTokens: o.promptTokens,
    maxTokens: o.maxTokens,
    dataset: o.dataset ? { path: basename(o.dataset), entries: readShareGpt(o.dataset) } : undefined,
    seed: o.seed,
    warmup: o.warmup,
    warmupMaxTokens: o.warmupMaxTokens,
    timeoutMs: o.timeout * 1000,
    load: { maxLoad: o.maxLoad, timeoutS: o.loadTimeout * 60, pollS: o.loadPoll },
    serverPid: o.serverPid,
    maxOtherCores: o.maxOtherCores,
    retries: o.maxOtherCores === undefined ? 0 : o.retries,
    progress: o.progress && process.stderr.isTTY === true,
    label,
    serverInfo: o.serverInfo === undefined ? undefined : shareablePaths(o.serverInfo),
    command: commandLineWithoutServerInfo(process.argv.slice(2)),
    headlineTarget: o.headlineTarget,
    log,
  };
  log(`${label}: ${o.endpoint} at ${url}, levels ${levels.join(', ')}, requests per level: ${describeRequestCount(o.requests)}`);
  const report = await runBenchmark(options, tokenizer);

  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.json`, `${JSON.stringify(report, null, 2)}\n`);
  let chart: string | undefined;
  if (report.runs.length > 1) {
    writeFileSync(
      `${out}.svg`,
      await sweepChartSvg([{ name: label, runs: report.runs }], `${label}: throughput and TTFT against concurrency`),
    );
    chart = `${basename(out)}.svg`;
  }
  const markdown = markdownReport(report, chart);
  writeFileSync(`${out}.md`, markdown);
  if (!o.quiet) process.stdout.write(markdown);
  if (report.headline) {
    const h = report.headline;
    log(
      `headline: c8 ${h.c8OutputTokPerS.toFixed(1)} tok/s / c1 ${h.c1OutputTokPerS.toFixed(1)} tok/s = ${h.ratio.toFixed(2)}x (target ≥ ${h.target}x)`,
    );
  }
  log(`wrote ${out}.json, ${out}.md${chart ? `, ${out}.svg` : ''}`);
  if (report.runs.some((r) => r.completed === 0)) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench-client: ${(err as Error).message}\n`);
  process.exit(1);
});
