// Prompt latencies of an OpenAI-compatible server, one request at a time: prefill speed (TTFT of
// a fresh N-token prompt with max_tokens 1) and warm-prefix TTFT (a long shared system prompt
// already seen, then a short new question). Used by bench/peers/run.sh for every server alike.
//
//   node --import tsx bench/peers/latency-probe.ts --url http://127.0.0.1:8080 --model M --tokenizer GGUF --out file.json
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { fitPrompt } from '../client/prompt-fitting.ts';
import { loadPromptTokenizer, type PromptTokenizer } from '../client/prompt-tokenizer.ts';
import { seededRng } from '../client/rng.ts';
import { syntheticText } from '../client/synthetic-prompts.ts';
import type { ChatMessage } from '../../src/text/generation.ts';
import { median } from '../client/percentiles.ts';

const opts = new Command()
  .requiredOption('--url <url>', 'server base URL')
  .requiredOption('--model <name>', 'model name to send')
  .option('--tokenizer <spec>', 'model whose tokenizer sizes the prompts (GGUF path or directory)')
  .option('--prompt-tokens <n>', 'prompt length of the prefill probe', (v) => Number.parseInt(v, 10), 512)
  .option('--prefix-tokens <n>', 'shared system prompt of the warm-prefix probe', (v) => Number.parseInt(v, 10), 1500)
  .option('--suffix-tokens <n>', 'new tokens after the shared prefix', (v) => Number.parseInt(v, 10), 20)
  .option('--repeats <n>', 'measurements per probe (the median is reported)', (v) => Number.parseInt(v, 10), 5)
  .requiredOption('--out <file>', 'JSON result file')
  .parse()
  .opts<{
    url: string;
    model: string;
    tokenizer?: string;
    promptTokens: number;
    prefixTokens: number;
    suffixTokens: number;
    repeats: number;
    out: string;
  }>();

const tok = await loadPromptTokenizer(opts.tokenizer);
const client = new OpenAI({ baseURL: `${opts.url.replace(/\/$/, '')}/v1`, apiKey: 'unused', maxRetries: 0 });
const rng = seededRng(20261206);

/** Milliseconds from sending a streamed chat request to its first content chunk. */
async function ttft(messages: ChatMessage[]): Promise<number> {
  const start = performance.now();
  const stream = await client.chat.completions.create({
    model: opts.model,
    messages,
    max_tokens: 1,
    temperature: 0,
    stream: true,
  } as never);
  let first: number | undefined;
  for await (const chunk of stream as unknown as AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>) {
    if (first === undefined && chunk.choices[0]?.delta?.content) first = performance.now() - start;
  }
  return first ?? performance.now() - start;
}

/** A chat of `system` (optional) and a user message sized so the whole prompt has `tokens` tokens. */
function chat(tokens: number, system?: string): { messages: ChatMessage[]; promptTokens: number } {
  const lead = system === undefined ? 'Read the notes. ' : 'Question: ';
  const withSystem: PromptTokenizer = {
    encode: (text, o) => tok.encode(text, o),
    decode: (ids) => tok.decode(ids),
    applyChatTemplate: (m, o) => tok.applyChatTemplate(system === undefined ? m : [{ role: 'system', content: system }, ...m], o),
    eosTokenIds: tok.eosTokenIds,
  };
  const fitted = fitPrompt(withSystem, 'chat', lead, syntheticText(rng, tokens * 2), tokens);
  const user = fitted.body.kind === 'chat' ? fitted.body.messages : [];
  return { messages: system === undefined ? user : [{ role: 'system', content: system }, ...user], promptTokens: fitted.promptTokens };
}

// Prefill: a different prompt each time, so no server reuses anything.
await ttft(chat(64).messages); // warm-up
const prefill: number[] = [];
for (let i = 0; i < opts.repeats; i++) prefill.push(await ttft(chat(opts.promptTokens).messages));

// Warm prefix: one long system prompt; its first use caches it, later questions reuse it.
const system = syntheticText(rng, Math.round(opts.prefixTokens * 0.9));
const prefixTokens = tok.encode(tok.applyChatTemplate([{ role: 'system', content: system }], { addGenerationPrompt: false }), {
  addSpecialTokens: false,
}).length;
const cold = await ttft(chat(prefixTokens + opts.suffixTokens, system).messages);
const warm: number[] = [];
let warmPromptTokens = 0;
for (let i = 0; i < opts.repeats; i++) {
  const c = chat(prefixTokens + opts.suffixTokens, system);
  warmPromptTokens = c.promptTokens;
  warm.push(await ttft(c.messages));
}

const result = {
  prefill: {
    promptTokens: opts.promptTokens,
    ttftMs: median(prefill),
    tokPerSec: (opts.promptTokens / median(prefill)) * 1000,
    samplesMs: prefill,
  },
  warmPrefix: { prefixTokens, promptTokens: warmPromptTokens, coldTtftMs: cold, ttftMs: median(warm), samplesMs: warm },
};
writeFileSync(opts.out, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
