// Throughput with structured output: c8 where 4 of the 8 streams are constrained (JSON schema,
// any JSON object, regular expression) against c8 with all 8 free, same server, rounds
// interleaved (free, mixed, free, mixed, ...) so that the machine's noise hits both alike. Also
// the time to first token of a request whose grammar is new (compiled) and of one cached.
// Starts the real executable on the default model (or --model) and writes
// bench/results/structured-output.md.
//
//   node --import tsx bench/structured-output.ts [--model PATH] [--rounds 3] [--out FILE]
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { waitForHealth } from '../test/helpers/cli-process.ts';
import { machineDescription, today } from './machine.ts';
import { spawnServer } from './soak/spawned-server.ts';
import { median } from './client/percentiles.ts';

const opts = new Command()
  .option('--model <path>', 'model to serve (default: the default model)')
  .option('--rounds <n>', 'rounds of each load', '3')
  .option('--requests <n>', 'requests per stream per round', '3')
  .option('--max-tokens <n>', 'tokens per request', '128')
  .option('--out <file>', 'report file', 'bench/results/structured-output.md')
  .parse()
  .opts<{ model?: string; rounds: string; requests: string; maxTokens: string; out: string }>();

const STREAMS = 8;
const rounds = Number(opts.rounds);
const perStream = Number(opts.requests);
const maxTokens = Number(opts.maxTokens);

const STORY_SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 60 },
    genre: { enum: ['fantasy', 'mystery', 'science fiction', 'romance'] },
    year: { type: 'integer', minimum: 1800, maximum: 2100 },
    characters: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string' } }, required: ['name', 'role'] },
    },
    story: { type: 'string' },
  },
  required: ['title', 'genre', 'year', 'characters', 'story'],
};
const FORMATS: Record<string, unknown>[] = [
  { response_format: { type: 'json_schema', json_schema: { name: 'story', schema: STORY_SCHEMA } } },
  { response_format: { type: 'json_object' } },
  { guided_regex: '[A-Z][a-z]+( [a-z]+){3,200}\\.' },
];
const topics = [
  'a lighthouse keeper',
  'a lost robot',
  'two rival bakers',
  'a city under the sea',
  'a dragon who hates gold',
  'a time traveller',
];

const server = await spawnServer(opts.model, ['--batch-size', '16']);
await waitForHealth(server.api);

interface Outcome {
  tokens: number;
  seconds: number;
  ttftMs: number;
}

async function request(i: number, constrained: boolean): Promise<Outcome> {
  const body = {
    messages: [{ role: 'user', content: `Write a long story about ${topics[i % topics.length]}, as JSON.` }],
    max_tokens: maxTokens,
    temperature: 0.7,
    seed: i,
    stream: true,
    stream_options: { include_usage: true },
    ...(constrained ? FORMATS[i % FORMATS.length] : { ignore_eos: true }),
  };
  const t0 = performance.now();
  const res = await fetch(`${server.api}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) throw new Error(`${res.status} ${await res.text()}`);
  let ttftMs = 0;
  let tokens = 0;
  let buffered = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += Buffer.from(chunk).toString('utf8');
    let at = buffered.indexOf('\n\n');
    while (at >= 0) {
      const line = buffered.slice(0, at).replace(/^data: /, '');
      buffered = buffered.slice(at + 2);
      at = buffered.indexOf('\n\n');
      if (line === '[DONE]') continue;
      const event = JSON.parse(line);
      if (!ttftMs && event.choices?.[0]?.delta?.content) ttftMs = performance.now() - t0;
      if (event.usage) tokens = event.usage.completion_tokens;
    }
  }
  return { tokens, seconds: (performance.now() - t0) / 1000, ttftMs };
}

/** `constrainedStreams` of the 8 streams send structured-output requests; aggregate output tok/s. */
async function round(
  constrainedStreams: number,
  offset: number,
): Promise<{ tokPerS: number; tokens: number; free: Outcome[]; constrained: Outcome[] }> {
  const free: Outcome[] = [];
  const constrained: Outcome[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: STREAMS }, async (_, s) => {
      for (let r = 0; r < perStream; r++) {
        const isConstrained = s < constrainedStreams;
        const o = await request(offset + s * perStream + r, isConstrained);
        (isConstrained ? constrained : free).push(o);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const tokens = [...free, ...constrained].reduce((n, o) => n + o.tokens, 0);
  return { tokPerS: tokens / seconds, tokens, free, constrained };
}

try {
  // A new grammar's first request (compiled) and the same grammar again (cached).
  const schemaFirst = await request(1000, true);
  const schemaCached = await request(1000 + FORMATS.length, true);
  const freeAlone = await request(1001, false);
  await round(STREAMS / 2, 2000); // warm-up of both loads
  const results: { load: string; tokPerS: number; tokens: number; freeDecode: number; constrainedDecode: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const constrainedStreams of [0, STREAMS / 2]) {
      const out = await round(constrainedStreams, 3000 + r * 100);
      const decode = (os: Outcome[]) =>
        os.length ? median(os.map((o) => o.tokens / Math.max(1e-3, o.seconds - o.ttftMs / 1000))) : Number.NaN;
      results.push({
        load: constrainedStreams ? '4 of 8 constrained' : 'all 8 free',
        tokPerS: out.tokPerS,
        tokens: out.tokens,
        freeDecode: decode(out.free),
        constrainedDecode: decode(out.constrained),
      });
      console.log(results.at(-1));
    }
  }
  const best = (load: string) => Math.max(...results.filter((x) => x.load === load).map((x) => x.tokPerS));
  const med = (load: string) => median(results.filter((x) => x.load === load).map((x) => x.tokPerS));
  const ratioBest = best('4 of 8 constrained') / best('all 8 free');
  const ratioMedian = med('4 of 8 constrained') / med('all 8 free');
  const lines = [
    '# Throughput with structured output',
    '',
    `Date: ${today()}. Machine: ${machineDescription()}; the server runs its native CPU kernels (the default). Command: \`node --import tsx bench/structured-output.ts --rounds ${rounds}\`.`,
    `Server: \`node bin/mlx-batch-server.js ${server.args.join(' ')}\`, default model.`,
    '',
    `Load: 8 concurrent streaming chat requests (REST), ${perStream} requests per stream per round, max_tokens ${maxTokens},`,
    'temperature 0.7. Free requests use ignore_eos; constrained ones rotate a JSON schema (nested object with an',
    'enum, bounded integer, array of objects and strings), json_object and a regular expression, and end where the',
    'format ends or at max_tokens. Rounds alternate between the two loads.',
    '',
    '| round | load | output tokens | aggregate tok/s | median decode tok/s, free streams | median decode tok/s, constrained streams |',
    '|---:|---|---:|---:|---:|---:|',
    ...results.map(
      (x, i) =>
        `| ${Math.floor(i / 2) + 1} | ${x.load} | ${x.tokens} | ${x.tokPerS.toFixed(1)} | ${x.freeDecode.toFixed(1)} | ${Number.isNaN(x.constrainedDecode) ? '–' : x.constrainedDecode.toFixed(1)} |`,
    ),
    '',
    `Ratio (4 of 8 constrained / all free): best round ${ratioBest.toFixed(2)}, median round ${ratioMedian.toFixed(2)}.`,
    '',
    `Time to first token, alone: a JSON-schema request whose grammar is new (compiled) ${schemaFirst.ttftMs.toFixed(0)} ms;`,
    `the same schema again (cached) ${schemaCached.ttftMs.toFixed(0)} ms; a free request ${freeAlone.ttftMs.toFixed(0)} ms.`,
    '',
  ];
  writeFileSync(opts.out, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  await server.stop();
}
