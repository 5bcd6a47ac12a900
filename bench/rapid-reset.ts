// HTTP/2 rapid reset (CVE-2023-44487) against the gRPC port: one unauthenticated connection opens
// and cancels streams as fast as it can, while /health on the REST port is polled. Reports how
// many streams the server took before it cut the connection and how long /health took meanwhile.
// Starts the real executable with an API key on the default model (or --model) and writes
// bench/results/rapid-reset-run.md (bench/results/rapid-reset.md compares runs before and after the guard).
//
//   node --import tsx bench/rapid-reset.ts [--model PATH] [--streams N] [--out FILE]
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { launchCli, waitForHealth } from '../test/helpers/cli-process.ts';
import { rapidReset } from '../test/helpers/rapid-reset.ts';
import { machineDescription, today } from './machine.ts';

const opts = new Command()
  .option('--model <path>', 'model to serve (default: the default model)')
  .option('--streams <n>', 'streams to open and cancel', '5000')
  .option('--out <file>', 'report file', 'bench/results/rapid-reset-run.md')
  .parse()
  .opts<{ model?: string; streams: string; out: string }>();

const args = [...(opts.model ? ['--model', opts.model] : []), '--port', '0', '--grpc-port', '0', '--log-level', 'warn'];
const server = await launchCli(args, { MLX_BATCH_SERVER_API_KEY: 'sk-rapid-reset' });
try {
  await waitForHealth(server.api);
  const health = server.api.replace(/\/v1$/, '/health');
  const latencies: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t0 = performance.now();
      await fetch(health, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const total = Number(opts.streams);
  const burst = await rapidReset(`http://${server.grpc}`, total);
  await new Promise((r) => setTimeout(r, 2000));
  polling = false;
  await poller;

  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  const lines = [
    '# HTTP/2 rapid reset on the gRPC port',
    '',
    `Date: ${today()}. Machine: ${machineDescription()}. Command: \`node --import tsx bench/rapid-reset.ts --streams ${total}\`.`,
    `Server: \`node bin/mlx-batch-server.js ${args.join(' ')}\` with an API key (the attacker has none).`,
    '',
    `One connection opened and at once cancelled ${burst.opened} streams in ${burst.burstMs.toFixed(0)} ms; the server ${
      burst.goawayCode === undefined
        ? 'let it'
        : `sent GOAWAY (error code ${burst.goawayCode}) after processing ${burst.processedByServer} streams`
    }.`,
    `GET /health on the REST port meanwhile (every 20 ms, ${latencies.length} calls): p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms.`,
    '',
  ];
  writeFileSync(opts.out, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  server.child.kill('SIGTERM');
  await server.exited;
}
