// Soak test: many concurrent clients for a long time against a running server (or one it starts),
// with a mix of streaming and non-streaming requests over REST (OpenAI API) and gRPC, requests
// cancelled mid-stream and clients that disconnect. Reports requests sent / completed / failed,
// the RSS of the server's processes over time, and whether the server went back to idle with no
// engine slot or prefix-cache lock leaked. Exits 1 on any unexpected failure or leak.
//
//   node --import tsx bench/soak.ts [options] [-- server arguments]
//
//   # against a running server (its pid for the RSS of its process tree):
//   node bin/mlx-batch-server.js --port 8080 --grpc-port 50051 &
//   node --import tsx bench/soak.ts --url http://127.0.0.1:8080/v1 --grpc 127.0.0.1:50051 --server-pid $!
//
//   # or start bin/mlx-batch-server.js on free ports (arguments after -- go to the server):
//   node --import tsx bench/soak.ts --spawn --duration 30s --clients 16 -- --batch-size 8
//
// Defaults: 64 clients for 10 minutes; results in bench/results/soak.md and soak.json (--out).
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { commandLine, shareablePaths } from './client/command-line.ts';
import { parseDuration } from './soak/duration.ts';
import { DEFAULT_WEIGHTS } from './soak/mix.ts';
import { KINDS, type Kind } from './soak/outcome.ts';
import { runSoak } from './soak/run.ts';
import { markdownReport } from './soak/soak-report.ts';

function count(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

function duration(name: string) {
  return (v: string): number => {
    try {
      const ms = parseDuration(v);
      if (ms <= 0) throw new RangeError('must be more than 0');
      return ms;
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
  };
}

function nonNegative(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got "${v}"`);
    return n;
  };
}

/** "grpc-session=0,openai-cancel=20": weights changed from the defaults. */
function weights(v: string): Record<Kind, number> {
  const out = { ...DEFAULT_WEIGHTS };
  for (const part of v.split(',').filter((p) => p.trim() !== '')) {
    const [kind, w] = part.split('=').map((s) => s.trim());
    if (!(KINDS as readonly string[]).includes(kind)) throw new InvalidArgumentError(`unknown kind "${kind}" (kinds: ${KINDS.join(', ')})`);
    out[kind as Kind] = nonNegative(`--mix ${kind}`)(w ?? '');
  }
  if (KINDS.every((k) => out[k] === 0)) throw new InvalidArgumentError('--mix leaves no kind of request');
  return out;
}

/** The arguments without the given options and their values (secrets, and notes recorded on their own). */
function withoutOptions(args: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (names.includes(args[i])) i++;
    else if (!names.some((n) => args[i].startsWith(`${n}=`))) out.push(args[i]);
  }
  return out;
}

const program = new Command()
  .name('soak')
  .description(
    'Soak a server: concurrent clients with a mix of streamed, whole, cancelled and abandoned requests; memory over time; leak check',
  )
  .argument('[server-args...]', 'with --spawn: more arguments of the server (after --)')
  .option('--url <url>', 'OpenAI base URL of a running server', 'http://127.0.0.1:8080/v1')
  .option('--grpc <target>', 'gRPC target of a running server (host:port)', '127.0.0.1:50051')
  .option('--server-pid <pid>', "a running server's process id, to sample the RSS of its process tree", count('--server-pid', 1))
  .option('--spawn', 'start bin/mlx-batch-server.js on free ports instead, and stop it afterwards')
  .option('--model <spec>', 'with --spawn: the model the server loads (default: its default model)')
  .option('--api-key <key>', 'API key, if the server requires one (env MLX_BATCH_SERVER_API_KEY)', process.env.MLX_BATCH_SERVER_API_KEY)
  .option('--clients <n>', 'concurrent clients', count('--clients', 1), 64)
  .option('--duration <time>', 'how long the clients send requests (30s, 10m, 1h)', duration('--duration'), parseDuration('10m'))
  .option('--min-tokens <n>', 'smallest max_tokens of a request that runs to its end', count('--min-tokens', 1), 8)
  .option('--max-tokens <n>', 'largest max_tokens of a request that runs to its end', count('--max-tokens', 1), 48)
  .option(
    '--cut-max-tokens <n>',
    'max_tokens of requests that are cancelled or abandoned (they are cut off first)',
    count('--cut-max-tokens', 1),
    256,
  )
  .option('--temperature <t>', 'sampling temperature', nonNegative('--temperature'), 0.7)
  .option(
    '--mix <weights>',
    `change the weights of kinds of request, e.g. "grpc-session=0,openai-cancel=20" (kinds: ${KINDS.join(', ')})`,
    weights,
    DEFAULT_WEIGHTS,
  )
  .option('--seed <n>', 'seed of the prompts and the mix', count('--seed', 0), 0)
  .option(
    '--request-timeout <time>',
    'deadline of one request; a request that takes longer failed',
    duration('--request-timeout'),
    parseDuration('300s'),
  )
  .option(
    '--idle-timeout <time>',
    'after the load, how long the server may take to be idle',
    duration('--idle-timeout'),
    parseDuration('60s'),
  )
  .option('--ready-timeout <time>', 'how long the server may take to start serving', duration('--ready-timeout'), parseDuration('5m'))
  .option('--sample-interval <time>', 'time between memory samples', duration('--sample-interval'), parseDuration('5s'))
  .option(
    '--note <text>',
    'a note for the results (repeatable), e.g. what else ran on the machine',
    (v: string, all: string[]) => [...all, v],
    [] as string[],
  )
  .option('--out <prefix>', 'write <prefix>.md and <prefix>.json', join(import.meta.dirname, 'results', 'soak'))
  .option('--no-progress', 'no progress bar (one line a minute instead)')
  .option('--quiet', 'do not print the markdown summary')
  .parse();

interface CliOptions {
  url: string;
  grpc: string;
  serverPid?: number;
  spawn?: boolean;
  model?: string;
  apiKey?: string;
  clients: number;
  duration: number;
  minTokens: number;
  maxTokens: number;
  cutMaxTokens: number;
  temperature: number;
  mix: Record<Kind, number>;
  seed: number;
  requestTimeout: number;
  idleTimeout: number;
  readyTimeout: number;
  sampleInterval: number;
  note: string[];
  out: string;
  progress: boolean;
  quiet?: boolean;
}

async function main(): Promise<void> {
  const o = program.opts<CliOptions>();
  const serverArgs = program.processedArgs[0] as string[];
  if (serverArgs.length && !o.spawn) program.error('error: server arguments need --spawn');
  if (o.model && !o.spawn) program.error('error: --model needs --spawn (a running server serves its own model)');
  if (o.minTokens > o.maxTokens) program.error('error: --min-tokens is more than --max-tokens');
  const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

  // Ctrl-C once ends the load early (the checks and the report still follow); twice exits.
  const stop = new AbortController();
  process.on('SIGINT', () => {
    if (stop.signal.aborted) process.exit(130);
    log('stopping the load (Ctrl-C again to quit at once)');
    stop.abort();
  });

  const report = await runSoak({
    url: o.url,
    grpc: o.grpc,
    spawn: o.spawn === true,
    model: o.model,
    serverArgs,
    serverPid: o.serverPid,
    apiKey: o.apiKey,
    clients: o.clients,
    durationMs: o.duration,
    minTokens: o.minTokens,
    maxTokens: o.maxTokens,
    cutMaxTokens: o.cutMaxTokens,
    temperature: o.temperature,
    weights: o.mix,
    seed: o.seed,
    requestTimeoutMs: o.requestTimeout,
    idleTimeoutMs: o.idleTimeout,
    readyTimeoutMs: o.readyTimeout,
    sampleIntervalMs: o.sampleInterval,
    progress: o.progress && process.stderr.isTTY === true,
    stop: stop.signal,
    command: commandLine('bench/soak.ts', withoutOptions(process.argv.slice(2), ['--api-key', '--note'])),
    log,
  });
  if (report.server.args) report.server.args = report.server.args.map(shareablePaths);
  report.notes = o.note;

  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(`${o.out}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const markdown = markdownReport(report);
  writeFileSync(`${o.out}.md`, markdown);
  if (!o.quiet) process.stdout.write(markdown);
  log(`${report.verdict.pass ? 'PASS' : `FAIL: ${report.verdict.reasons.join('; ')}`}`);
  log(`wrote ${o.out}.md, ${o.out}.json`);
  process.exit(report.verdict.pass ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`soak: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
