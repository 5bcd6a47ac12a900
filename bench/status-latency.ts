// How fast the server answers GetServerStatus, Tokenize and Detokenize while the engine is busy: a
// batch of 16 streams decoding and a 2,000-token prompt arriving. Those answers come from the
// server process (the engine pushes its figures with every step), so they should not wait for a
// step. Starts the real executable on the default model (or --model) and writes
// bench/results/status-latency.md.
//
//   node --import tsx bench/status-latency.ts [--model PATH] [--out FILE]
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { machineDescription, today } from './machine.ts';
import { waitForHealth } from '../test/helpers/cli-process.ts';
import { startDecodingStreams } from '../test/helpers/decoding-streams.ts';
import { spawnServer } from './soak/spawned-server.ts';

const opts = new Command()
  .option('--model <path>', 'model to serve (default: the default model)')
  .option('--out <file>', 'report file', 'bench/results/status-latency.md')
  .parse()
  .opts<{ model?: string; out: string }>();

const BATCH = 16;
const server = await spawnServer(opts.model, ['--batch-size', String(BATCH + 1)]);
await waitForHealth(server.api);
const client = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpc}` }));
const tokens = (ids: number[]) => ({ input: { case: 'tokens' as const, value: { ids } } });

type Call = 'GetServerStatus' | 'Tokenize' | 'Detokenize';
const text = 'How fast does the server answer while the engine works?';
const calls: Record<Call, () => Promise<unknown>> = {
  GetServerStatus: () => client.getServerStatus({}),
  Tokenize: () => client.tokenize({ prompt: { input: { case: 'text', value: text } } }),
  Detokenize: () => client.detokenize({ tokenIds: [504, 3319, 1385, 260, 3355, 3063] }),
};

/** Each call in turn, `rounds` times, 10 ms apart; latencies in ms by call. */
async function sample(rounds: number, stillBusy: () => boolean = () => true): Promise<Record<Call, number[]>> {
  const out: Record<Call, number[]> = { GetServerStatus: [], Tokenize: [], Detokenize: [] };
  for (let i = 0; i < rounds && stillBusy(); i++) {
    for (const [name, call] of Object.entries(calls) as [Call, () => Promise<unknown>][]) {
      const t0 = performance.now();
      await call();
      out[name].push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const row = (label: string, name: Call, xs: number[]) =>
  `| ${label} | ${name} | ${xs.length} | ${pct(xs, 50).toFixed(1)} | ${pct(xs, 99).toFixed(1)} | ${Math.max(...xs).toFixed(1)} |`;

try {
  await sample(5); // warm the connection and the tokenizer
  const idle = await sample(50);

  const batch = await startDecodingStreams(client, BATCH, (i) => [1, 504 + i, 3319, 1385], 4000);
  const decodeOnly = await sample(30);
  let longDone = false;
  const long = client
    .complete({
      prompt: tokens(Array.from({ length: 2000 }, (_, i) => 100 + ((i * 7) % 5000))),
      sampling: { temperature: 0, maxTokens: 1, ignoreEos: true },
    })
    .finally(() => (longDone = true));
  const withPrefill = await sample(1000, () => !longDone);
  await long;
  const status = await client.getServerStatus({});
  await batch.stop();

  const lines = [
    '# Server answers while the engine works',
    '',
    `Date: ${today()}. Machine: ${machineDescription()}. Command: \`node --import tsx bench/status-latency.ts${opts.model ? ` --model ${opts.model}` : ''}\`.`,
    `Server: \`node bin/mlx-batch-server.js ${server.args.join(' ')}\`.`,
    '',
    `Latency in ms of each call, made one after another 10 ms apart: at idle; while ${BATCH} streams decode;`,
    `and while a 2,000-token prompt is prefilled beside them (until it finishes). At the end the server reported`,
    `${status.runningRequests} running and ${status.waitingRequests} waiting requests, ${status.kvCacheBytesUsed} KV bytes in use.`,
    '',
    '| load | call | calls | p50 | p99 | max |',
    '|---|---|---:|---:|---:|---:|',
    ...(['GetServerStatus', 'Tokenize', 'Detokenize'] as Call[]).flatMap((c) => [
      row('idle', c, idle[c]),
      row(`${BATCH} decoding`, c, decodeOnly[c]),
      row(`${BATCH} decoding + 2,000-token prefill`, c, withPrefill[c]),
    ]),
    '',
  ];
  writeFileSync(opts.out, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  await server.stop();
}
