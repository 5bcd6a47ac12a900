// What prefix affinity is worth behind HAProxy: two replicas of the real executable on the default
// model, the shipped deploy/haproxy/haproxy.cfg against the same config made round robin, the same
// multi-turn chats through each (every chat with its own long system prompt and prompt_cache_key,
// every turn resending the whole conversation). Rounds alternate between the two configs, and every
// round has prompts of its own, so no round finds another's prefixes cached. Reports TTFT of the
// later turns (the ones a warm replica serves from its prefix cache) and the cached share of
// prompt tokens; writes bench/results/deploy-affinity.md.
//
//   node --import tsx bench/deploy-affinity.ts [--rounds 2] [--chats 16] [--turns 4] [--concurrency 4]
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { waitForHealth } from '../test/helpers/cli-process.ts';
import { type Balancer, roundRobinVariant, SHIPPED_HAPROXY_CONFIG, startHaproxy } from '../test/helpers/haproxy.ts';
import { median, percentile } from './client/percentiles.ts';
import { seededRng } from './client/rng.ts';
import { syntheticText } from './client/synthetic-prompts.ts';
import { cpuFlags, machineDescription, today } from './machine.ts';
import { spawnServer } from './soak/spawned-server.ts';

const opts = new Command()
  .option('--rounds <n>', 'rounds of each config', '2')
  .option('--chats <n>', 'conversations per round', '16')
  .option('--turns <n>', 'turns per conversation', '4')
  .option('--concurrency <n>', 'conversations in progress at once', '4')
  .option('--system-words <n>', 'words of each conversation’s system prompt', '300')
  .option('--max-tokens <n>', 'tokens per answer', '32')
  .option('--out <file>', 'report file', 'bench/results/deploy-affinity.md')
  .parse()
  .opts<{ rounds: string; chats: string; turns: string; concurrency: string; systemWords: string; maxTokens: string; out: string }>();
const [rounds, chats, turns, concurrency, systemWords, maxTokens] = [
  opts.rounds,
  opts.chats,
  opts.turns,
  opts.concurrency,
  opts.systemWords,
  opts.maxTokens,
].map(Number);

// One thread each: the two replicas share this machine's cores as two machines' would not, but
// alike in both configs.
const replicaArgs = ['--threads', '1', '--batch-size', '8'];
const replicas = await Promise.all([spawnServer(undefined, replicaArgs), spawnServer(undefined, replicaArgs)]);
await Promise.all(replicas.map((r) => waitForHealth(r.api)));
const addresses = replicas.map((r) => ({ rest: new URL(r.api).host, grpc: r.grpc }));

interface TurnRecord {
  turn: number;
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
}

/** One streamed chat turn through the balancer: its TTFT (first content), its answer and usage. */
async function turn(base: string, messages: { role: string; content: string }[], key: string) {
  const sent = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      messages,
      prompt_cache_key: key,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttftMs: number | undefined;
  let answer = '';
  let usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | undefined;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body ?? []) {
    buffered += decoder.decode(chunk, { stream: true });
    const events = buffered.split('\n\n');
    buffered = events.pop() ?? '';
    for (const event of events) {
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const parsed = JSON.parse(data);
      const delta = parsed.choices?.[0]?.delta?.content;
      if (delta) {
        ttftMs ??= performance.now() - sent;
        answer += delta;
      }
      if (parsed.usage) usage = parsed.usage;
    }
  }
  if (ttftMs === undefined || !usage) throw new Error('a stream without content or usage');
  return { ttftMs, answer, promptTokens: usage.prompt_tokens, cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

/** One round: `chats` conversations, `concurrency` at a time, prompts seeded by the round. */
async function round(lb: Balancer, seed: number): Promise<{ records: TurnRecord[]; wallMs: number }> {
  const records: TurnRecord[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let c = next++; c < chats; c = next++) {
        const rng = seededRng(seed * 1000 + c);
        const messages = [{ role: 'system', content: syntheticText(rng, systemWords) }];
        for (let t = 0; t < turns; t++) {
          messages.push({ role: 'user', content: syntheticText(rng, 20) });
          const r = await turn(lb.rest, messages, `round-${seed}-chat-${c}`);
          messages.push({ role: 'assistant', content: r.answer });
          records.push({ turn: t, ttftMs: r.ttftMs, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens });
        }
      }
    }),
  );
  return { records, wallMs: performance.now() - started };
}

const configs = [
  { name: 'affinity (shipped haproxy.cfg)', config: SHIPPED_HAPROXY_CONFIG },
  { name: 'round robin (same config, balance roundrobin)', config: roundRobinVariant(SHIPPED_HAPROXY_CONFIG) },
];
const rows: string[] = [];
const laterTtfts = new Map<string, number[]>();
const shares = new Map<string, number[]>();
try {
  for (let r = 0; r < rounds; r++) {
    for (const [i, { name, config }] of configs.entries()) {
      const lb = await startHaproxy(config, addresses);
      try {
        const { records, wallMs } = await round(lb, r * configs.length + i + 1);
        const later = records.filter((x) => x.turn > 0).map((x) => x.ttftMs);
        const first = records.filter((x) => x.turn === 0).map((x) => x.ttftMs);
        const sorted = [...later].sort((a, b) => a - b);
        const share = records.reduce((s, x) => s + x.cachedTokens, 0) / records.reduce((s, x) => s + x.promptTokens, 0);
        laterTtfts.set(name, [...(laterTtfts.get(name) ?? []), median(later)]);
        shares.set(name, [...(shares.get(name) ?? []), share]);
        rows.push(
          `| ${r + 1} | ${name} | ${records.length} | ${share.toFixed(3)} | ${median(first).toFixed(0)} | ${median(later).toFixed(0)} | ${percentile(sorted, 90).toFixed(0)} | ${(wallMs / 1000).toFixed(1)} |`,
        );
        console.error(rows.at(-1));
      } finally {
        await lb.close();
      }
    }
  }
} finally {
  await Promise.all(replicas.map((r) => r.stop()));
}

const [affinity, roundRobin] = configs.map((c) => median(laterTtfts.get(c.name) ?? []));
const report = `# Prefix affinity behind HAProxy

Date: ${today()}. Machine: ${machineDescription()}; CPU flags: ${cpuFlags()}. Both replicas and HAProxy on this one machine.
Command: \`node --import tsx bench/deploy-affinity.ts --rounds ${rounds} --chats ${chats} --turns ${turns} --concurrency ${concurrency}\`.
Replicas: two of \`node bin/mlx-batch-server.js ${replicaArgs.join(' ')}\` (the default model, native kernels), behind Debian's HAProxy 2.6 on
\`deploy/haproxy/haproxy.cfg\` and on the same config with every \`balance\` made \`roundrobin\`.

Load: per round ${chats} conversations, ${concurrency} in progress at once; each has its own system prompt of ${systemWords}
words and its own \`prompt_cache_key\`, and ${turns} turns of about 20 words, each resending the whole conversation
(streamed, max_tokens ${maxTokens}, temperature 0). Every round has prompts of its own (no round finds another's
prefixes cached); rounds alternate between the configs. TTFT = time to the first content chunk, at the client.
"Later turns" are turns 2 to ${turns}: the ones a replica that served the earlier turns can take from its prefix cache.

| round | config | requests | cached share of prompt tokens | median TTFT, first turns (ms) | median TTFT, later turns (ms) | p90 TTFT, later turns (ms) | wall time (s) |
|---:|---|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

Median over rounds of the later turns' median TTFT: affinity ${affinity.toFixed(0)} ms, round robin ${roundRobin.toFixed(0)} ms
(round robin / affinity: ${(roundRobin / affinity).toFixed(2)}). Cached share: affinity ${median(shares.get(configs[0].name) ?? []).toFixed(3)},
round robin ${median(shares.get(configs[1].name) ?? []).toFixed(3)}.
`;
writeFileSync(opts.out, report);
console.log(report);
