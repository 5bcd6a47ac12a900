// Prompt-cache validation (the seed's test_prompt_cache.py), against a running server:
// 1. a ~1,500-token shared system prompt with different user questions: cold vs warm TTFT;
// 2. a 5-turn chat: TTFT of each turn with the cache, against the same turns on a server with the
//    cache off (--cache-off-url) or, if none is given, against a cold copy of each turn made unique
//    by a nonce at the very start of the conversation (so no prefix of it can be cached).
// Prints the ratios and the server's cache hit rate; writes bench/results/prompt-cache.md.
// Run: `node --import tsx bench/prompt-cache.ts [--endpoint grpc|openai] [--url ...]`
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerationClient, type ChatMessage } from '../clients/typescript/src/index.ts';
import { machineDescription, today } from './machine.ts';
import { median } from './client/percentiles.ts';

const program = new Command()
  .option('--endpoint <kind>', 'grpc or openai', 'grpc')
  .option('--url <url>', 'server URL (default http://127.0.0.1:50051 for grpc, http://127.0.0.1:8080 for openai)')
  .option('--cache-off-url <url>', 'a second server of the same model started with --disable-prompt-cache')
  .option('--system-tokens <n>', 'approximate length of the shared system prompt', (v) => Number.parseInt(v, 10), 1500)
  .option('--questions <n>', 'user questions that share the system prompt', (v) => Number.parseInt(v, 10), 5)
  .option('--turns <n>', 'turns of the chat', (v) => Number.parseInt(v, 10), 5)
  .option('--max-tokens <n>', 'tokens per answer', (v) => Number.parseInt(v, 10), 32)
  .option('--api-key <key>', 'API key, if the server requires one')
  .option('--out <file>', 'markdown result file', join(import.meta.dirname, 'results', 'prompt-cache.md'))
  .parse();
const opts = program.opts<{
  endpoint: 'grpc' | 'openai';
  url?: string;
  cacheOffUrl?: string;
  systemTokens: number;
  questions: number;
  turns: number;
  maxTokens: number;
  apiKey?: string;
  out: string;
}>();
if (opts.endpoint !== 'grpc' && opts.endpoint !== 'openai') throw new Error('--endpoint must be grpc or openai');
const url = opts.url ?? (opts.endpoint === 'grpc' ? 'http://127.0.0.1:50051' : 'http://127.0.0.1:8080');

interface Answer {
  ttftMs: number;
  text: string;
  promptTokens: number;
  cachedTokens: number;
}

/** Streams one greedy chat completion and times its first token. */
async function ask(server: string, messages: ChatMessage[]): Promise<Answer> {
  return opts.endpoint === 'grpc' ? askGrpc(server, messages) : askOpenAi(server, messages);
}

const grpcClients = new Map<string, GenerationClient>();
async function askGrpc(server: string, messages: ChatMessage[]): Promise<Answer> {
  let client = grpcClients.get(server);
  if (!client) grpcClients.set(server, (client = new GenerationClient({ baseUrl: server })));
  const start = performance.now();
  let ttftMs = 0;
  let text = '';
  let promptTokens = 0;
  let cachedTokens = 0;
  for await (const e of client.generate({ prompt: { messages }, sampling: { temperature: 0, maxTokens: opts.maxTokens } })) {
    if (e.type === 'started') {
      promptTokens = e.promptTokens;
      cachedTokens = e.cachedTokens;
    } else if (e.type === 'delta' && e.tokenIds.length > 0) {
      ttftMs ||= performance.now() - start;
      text += e.text;
    }
  }
  return { ttftMs, text, promptTokens, cachedTokens };
}

async function askOpenAi(server: string, messages: ChatMessage[]): Promise<Answer> {
  const start = performance.now();
  const res = await fetch(`${server}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
    body: JSON.stringify({
      model: 'default',
      messages,
      temperature: 0,
      max_tokens: opts.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) throw new Error(`server answered ${res.status}: ${await res.text()}`);
  let ttftMs = 0;
  let text = '';
  let promptTokens = 0;
  let cachedTokens = 0;
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += Buffer.from(chunk).toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const parsed = JSON.parse(data);
      const delta = parsed.choices?.[0]?.delta?.content;
      if (delta) {
        ttftMs ||= performance.now() - start;
        text += delta;
      }
      if (parsed.usage) {
        promptTokens = parsed.usage.prompt_tokens;
        cachedTokens = parsed.usage.prompt_tokens_details?.cached_tokens ?? 0;
      }
    }
  }
  return { ttftMs, text, promptTokens, cachedTokens };
}

/** Deterministic filler text of roughly `tokens` tokens (about 1.3 tokens per word here). */
function systemPrompt(tokens: number, nonce = ''): string {
  const words = ['service', 'request', 'latency', 'cache', 'prefix', 'token', 'batch', 'model', 'memory', 'stream', 'answer', 'policy'];
  const out: string[] = [`${nonce}You are the support assistant of a large inference service. Follow these notes:`];
  for (let i = 0; out.join(' ').length < tokens * 4.2; i++) {
    out.push(
      `Note ${i + 1}: the ${words[i % words.length]} of every ${words[(i * 7 + 3) % words.length]} is reviewed before the ${words[(i * 5 + 1) % words.length]} is sent.`,
    );
  }
  return out.join(' ');
}

// Part 1: shared system prompt.
const questions = [
  'What is a prefix cache?',
  'How do I lower latency?',
  'What is a batch?',
  'Why stream answers?',
  'What limits memory?',
  'Who reviews a policy?',
  'What is a token?',
].slice(0, opts.questions);
const run = Date.now().toString(36);
const system = systemPrompt(opts.systemTokens, `[run ${run}] `);
const cold = await ask(url, [
  { role: 'system', content: system },
  { role: 'user', content: questions[0] },
]);
const warm: Answer[] = [];
for (const q of questions.slice(1))
  warm.push(
    await ask(url, [
      { role: 'system', content: system },
      { role: 'user', content: q },
    ]),
  );
const warmTtft = median(warm.map((w) => w.ttftMs));
const sharedRatio = warmTtft / cold.ttftMs;
console.log(
  `shared system prompt: ${cold.promptTokens} tokens; cold TTFT ${cold.ttftMs.toFixed(0)} ms; warm TTFT (median of ${warm.length}) ${warmTtft.toFixed(0)} ms; ratio ${sharedRatio.toFixed(3)}`,
);

// Part 2: a multi-turn chat, with and without the cache.
const userTurns = [
  'Hello! Can you tell me about the city of Paris?',
  'What is the best season to visit?',
  'Which museums should I see first?',
  'How do I get from the airport to the centre?',
  'Can you summarise our conversation in two sentences?',
  'Thank you. Any last tip?',
].slice(0, opts.turns);
async function chat(server: string, nonce: string): Promise<Answer[]> {
  const messages: ChatMessage[] = [{ role: 'system', content: `${nonce}You are a helpful travel assistant.` }];
  const answers: Answer[] = [];
  for (const u of userTurns) {
    messages.push({ role: 'user', content: u });
    const a = await ask(server, messages);
    answers.push(a);
    messages.push({ role: 'assistant', content: a.text });
  }
  return answers;
}
const cached = await chat(url, `[chat ${run}] `);
// Without a cache-off server, each cold turn is the same conversation behind a fresh nonce.
const uncached: Answer[] = [];
if (opts.cacheOffUrl) uncached.push(...(await chat(opts.cacheOffUrl, `[chat ${run}] `)));
else {
  const messages: ChatMessage[] = [{ role: 'system', content: '' }];
  for (let t = 0; t < userTurns.length; t++) {
    messages[0] = { role: 'system', content: `[cold ${run}-${t}] You are a helpful travel assistant.` };
    messages.push({ role: 'user', content: userTurns[t] });
    uncached.push(await ask(url, messages));
    messages.push({ role: 'assistant', content: cached[t].text });
  }
}
const last = userTurns.length - 1;
const turnRatio = cached[last].ttftMs / uncached[last].ttftMs;
console.log(
  `turn ${last + 1}: ${cached[last].promptTokens} prompt tokens, ${cached[last].cachedTokens} cached; TTFT ${cached[last].ttftMs.toFixed(0)} ms with cache vs ${uncached[last].ttftMs.toFixed(0)} ms without; ratio ${turnRatio.toFixed(3)}`,
);

let hitRate = Number.NaN;
if (opts.endpoint === 'grpc') {
  const status = await (grpcClients.get(url) as GenerationClient).status();
  hitRate = status.prefixCacheHitRate;
  console.log(
    `server prefix-cache hit rate: ${(hitRate * 100).toFixed(1)}% (${status.prefixCacheHitTokens} of ${status.prefixCacheQueryTokens} prompt tokens)`,
  );
}

const pass = (ok: boolean) => (ok ? 'met' : '**missed**');
const rows = cached.map(
  (a, t) =>
    `| ${t + 1} | ${a.promptTokens} | ${a.cachedTokens} | ${a.ttftMs.toFixed(0)} | ${uncached[t].ttftMs.toFixed(0)} | ${(a.ttftMs / uncached[t].ttftMs).toFixed(3)} |`,
);
const md = `# Prompt-cache validation

Date: ${today()}. Machine: ${machineDescription()}. Endpoint: ${opts.endpoint} (${url}); greedy, ${opts.maxTokens} tokens per answer.
Command: \`node --import tsx bench/prompt-cache.ts --endpoint ${opts.endpoint}${opts.cacheOffUrl ? ' --cache-off-url …' : ''}\` against \`mlx-batch-server\` on the default model.
"Without cache": ${opts.cacheOffUrl ? 'a second server started with --disable-prompt-cache' : 'the same turn behind a fresh nonce at the start of the conversation, so nothing of it is cached'}.

## Shared ~${opts.systemTokens}-token system prompt, different questions

| | prompt tokens | TTFT ms |
|---|---|---|
| cold (first question) | ${cold.promptTokens} | ${cold.ttftMs.toFixed(0)} |
| warm (median of ${warm.length} other questions) | ${median(warm.map((w) => w.promptTokens))} | ${warmTtft.toFixed(0)} |

Warm / cold = **${sharedRatio.toFixed(3)}** (target ≤ 0.1: ${pass(sharedRatio <= 0.1)}).

## ${userTurns.length}-turn chat

| turn | prompt tokens | cached tokens | TTFT ms with cache | TTFT ms without | ratio |
|---|---|---|---|---|---|
${rows.join('\n')}

Turn ${last + 1} with / without cache = **${turnRatio.toFixed(3)}** (target ≤ 0.2: ${pass(turnRatio <= 0.2)}).
${Number.isNaN(hitRate) ? '' : `\nServer prefix-cache hit rate over the run: ${(hitRate * 100).toFixed(1)}% of prompt tokens.\n`}`;
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(opts.out, md);
console.log(`wrote ${opts.out}`);
