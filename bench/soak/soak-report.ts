// What a soak run found, as JSON (every sample and count) and as the markdown summary in
// bench/results/soak.md.
import { fmt } from '../client/report.ts';
import { formatDuration } from './duration.ts';
import type { MemorySample, RssSummary } from './memory-sampler.ts';
import type { Kind } from './outcome.ts';
import type { Check, StatusSnapshot } from './server-status.ts';
import type { MetricRow } from './server-metrics.ts';
import type { ErrorCount, KindSummary } from './tally.ts';

export interface SoakSettings {
  clients: number;
  durationS: number;
  requestTimeoutS: number;
  idleTimeoutS: number;
  sampleIntervalS: number;
  minTokens: number;
  maxTokens: number;
  cutMaxTokens: number;
  temperature: number;
  seed: number;
  weights: Record<Kind, number>;
}

export interface SoakReport {
  date: string;
  machine: string;
  command: string;
  server: {
    mode: 'spawned' | 'external';
    openaiUrl: string;
    grpcTarget: string;
    pid: number | null;
    /** The spawned server's arguments. */
    args?: string[];
    model: string;
    version: string;
  };
  settings: SoakSettings;
  /** From the first request to the last answer. */
  loadS: number;
  counts: KindSummary[];
  errors: ErrorCount[];
  memory: {
    samples: MemorySample[];
    treeRss: RssSummary | null;
    engineResident: RssSummary | null;
    /** Samples whose GetServerStatus call failed. */
    statusFailures: number;
    /** Samples whose GetServerStatus answer carried zeros instead of the engine's figures (engine busy). */
    withoutEngineFigures: number;
  };
  idle: { reached: boolean; waitedS: number; status?: StatusSnapshot; error?: string };
  checks: Check[];
  metrics: MetricRow[];
  /** Other processes' average CPU use during the load, in cores (null without /proc). */
  otherCpuCores: number | null;
  /** 1-minute load average at the start and the end of the load. */
  loadAverage: [number, number];
  /** The spawned server's exit after SIGTERM. */
  shutdown?: { code: number | null; killed: boolean };
  /** Warnings and errors the spawned server logged, and what it wrote to stderr that is not a JSON log line. */
  serverLog?: { warnings: number; errors: number; examples: string[]; notJson: number; notJsonExamples: string[] };
  verdict: { pass: boolean; reasons: string[] };
  /** Notes given on the command line (--note). */
  notes?: string[];
}

const MiB = 1024 ** 2;
const mib = (b: number | null | undefined) => (b === null || b === undefined ? '–' : (b / MiB).toFixed(0));

/** About `rows` samples spread evenly over the load, always with the first and the last, then the idle ones. */
export function evenlySpaced(samples: MemorySample[], rows: number): MemorySample[] {
  const load = samples.filter((s) => s.phase === 'load');
  if (load.length <= rows) return [...load, ...samples.filter((s) => s.phase === 'idle')];
  const picked = new Set<MemorySample>();
  const end = load[load.length - 1].tS;
  for (let i = 0; i < rows; i++) {
    const t = (end * i) / (rows - 1);
    picked.add(load.reduce((best, s) => (Math.abs(s.tS - t) < Math.abs(best.tS - t) ? s : best)));
  }
  return [...[...picked].sort((a, b) => a.tS - b.tS), ...samples.filter((s) => s.phase === 'idle')];
}

function countsTable(rows: KindSummary[]): string[] {
  const out = [
    '| kind | sent | completed | cancelled | disconnected | refused (overload) | failed | output tokens | latency of completed, s p50 / p90 / max |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const lat = r.latencyMs.count
      ? `${fmt((r.latencyMs.p50 ?? 0) / 1000)} / ${fmt((r.latencyMs.p90 ?? 0) / 1000)} / ${fmt((r.latencyMs.max ?? 0) / 1000)}`
      : '–';
    const name = r.kind === 'total' ? '**total**' : r.kind;
    out.push(
      `| ${name} | ${r.sent} | ${r.completed} | ${r.cancelled} | ${r.disconnected} | ${r.refused} | ${r.failed} | ${r.outputTokens} | ${lat} |`,
    );
  }
  return out;
}

function memoryTable(samples: MemorySample[]): string[] {
  const out = [
    '| time | phase | server main, MiB | engine process, MiB | tree total, MiB | engine_resident_bytes, MiB | prefix cache, MiB | running | waiting | in flight | requests done |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of evenlySpaced(samples, 11)) {
    out.push(
      `| ${formatDuration(s.tS * 1000)} | ${s.phase} | ${mib(s.mainBytes)} | ${mib(s.engineBytes)} | ${mib(s.totalBytes)} | ${mib(s.engineResidentBytes)} | ${mib(s.prefixCacheBytes)} | ${s.running ?? '–'} | ${s.waiting ?? '–'} | ${s.inFlight ?? '–'} | ${s.requestsDone} |`,
    );
  }
  return out;
}

function rssLine(what: string, r: RssSummary | null): string {
  if (!r) return `- ${what}: not measured.`;
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} MiB/min`;
  const trend =
    r.secondHalfMiBPerMin === null
      ? ''
      : `; trend ${signed(r.secondHalfMiBPerMin)} over the second half of the load${r.lastQuarterMiBPerMin === null ? '' : `, ${signed(r.lastQuarterMiBPerMin)} over its last quarter`}`;
  return `- ${what}: start ${mib(r.startBytes)} MiB, peak ${mib(r.peakBytes)} MiB (at ${formatDuration(r.peakAtS * 1000)}), end of load ${mib(r.endBytes)} MiB, idle afterwards ${mib(r.idleBytes)} MiB${trend}.`;
}

function metricValue(v: number | null): string {
  if (v === null) return '–';
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

export function markdownReport(r: SoakReport): string {
  const s = r.settings;
  const total = r.counts.find((c) => c.kind === 'total') as KindSummary;
  const out = [
    `# Soak: ${s.clients} clients for ${formatDuration(s.durationS * 1000)}`,
    '',
    `Date: ${r.date}. Machine: ${r.machine}.`,
    `Command: \`${r.command}\``,
    `Server: ${r.server.mode === 'spawned' ? `started by the soak: \`node bin/mlx-batch-server.js ${r.server.args?.join(' ') ?? ''}\`` : `already running at ${r.server.openaiUrl} and ${r.server.grpcTarget}`}` +
      ` (version ${r.server.version}), model ${r.server.model}.`,
    '',
    `**Verdict: ${r.verdict.pass ? 'PASS' : 'FAIL'}**${r.verdict.reasons.length ? ` — ${r.verdict.reasons.join('; ')}` : ' — no unexpected failure, and the server went back to idle with no engine slot, queue place, request or cache lock left held.'}`,
    '',
    '## Load',
    '',
    `${s.clients} concurrent clients, each sending its next request as soon as its last one ended, for ${formatDuration(s.durationS * 1000)} ` +
      `(the last answers came ${formatDuration(Math.max(0, r.loadS - s.durationS) * 1000)} later). Prompts: a short task and a few sentences of text, ` +
      `half of them under one of three shared system prompts (prefix cache); answers of ${s.minTokens}–${s.maxTokens} tokens (70% with ignore_eos, the rest stop at EOS), ` +
      `temperature ${s.temperature}. Requests that are cancelled or abandoned ask for ${s.cutMaxTokens} tokens and are cut after 1–8 streamed chunks, or ` +
      `0–1.5 s after sending (possibly still queued). Per-request deadline ${s.requestTimeoutS} s. Mix weights: ` +
      Object.entries(s.weights)
        .map(([k, w]) => `${k} ${w}`)
        .join(', ') +
      '.',
    '',
    'Kinds: `openai-*` use the REST API (`openai-stream`, `-chat`: chat completions streamed or not; `-completion`: /v1/completions; `-cancel`: a stream aborted through the SDK; ' +
      '`-disconnect`: a raw HTTP request, streamed or not, whose socket is destroyed). `grpc-*` use the TypeScript client (`grpc-stream`: GenerateStream; `-complete`: Complete; ' +
      '`-session`: 2–3 requests on one Generate stream, one cancelled with CancelGeneration; `-cancel`: GenerateStream reset by the client; `-disconnect`: the HTTP/2 connection dropped). ' +
      '"Failed" counts only the unexpected: errors, wrong answer lengths or finish reasons, timeouts. Cancelled and disconnected requests that finished before their cut count as completed.',
    '',
    ...countsTable(r.counts),
    '',
    `Requests per second: ${fmt(total.sent / Math.max(r.loadS, 1e-3), 2)}; generated tokens per second (completed requests): ${fmt(total.outputTokens / Math.max(r.loadS, 1e-3))}.`,
    '',
  ];
  if (r.errors.length) {
    out.push('Failures and refusals:', '', '| kind | result | count | error |', '|---|---|---:|---|');
    for (const e of r.errors.slice(0, 30))
      out.push(`| ${e.kind} | ${e.result} | ${e.count} | ${e.error.replaceAll('|', '\\|').replaceAll('\n', ' ')} |`);
    out.push('');
  }
  out.push(
    '## Memory',
    '',
    r.server.pid === null
      ? 'RSS of the server processes: not measured (the server runs elsewhere; pass --server-pid for a local one). engine_resident_bytes comes from GetServerStatus.'
      : `RSS (VmRSS from /proc) of the server process (pid ${r.server.pid}) and its descendants (the engine process), sampled every ${s.sampleIntervalS} s; engine_resident_bytes is the engine's own figure from GetServerStatus.`,
    '',
    ...memoryTable(r.memory.samples),
    '',
    rssLine('Server tree RSS', r.memory.treeRss),
    rssLine('Engine resident (GetServerStatus)', r.memory.engineResident),
    ...(r.memory.withoutEngineFigures
      ? [
          `- ${r.memory.withoutEngineFigures} of ${r.memory.samples.length} GetServerStatus answers had no engine figures: the engine did not answer the server's stats request in time ` +
            '(the server then reports 0 running, 0 waiting and 0 bytes with state READY); those figures are shown as –.',
        ]
      : []),
    ...(r.memory.statusFailures ? [`- ${r.memory.statusFailures} GetServerStatus calls failed while sampling.`] : []),
    '',
    '## Idle and leak check',
    '',
    r.idle.reached
      ? `After the load stopped the server was idle ${fmt(r.idle.waitedS, 1)} s after the last answer.`
      : `The server did **not** become idle within ${s.idleTimeoutS} s of the last answer${r.idle.error ? ` (${r.idle.error})` : ''}.`,
    '',
    '| check | value | expected | ok |',
    '|---|---|---|---|',
    ...r.checks.map((c) => `| ${c.what} | ${c.value} | ${c.expected} | ${c.ok === null ? '(reported only)' : c.ok ? 'yes' : '**no**'} |`),
    '',
  );
  if (r.metrics.length) {
    out.push(
      '## Server metrics (/metrics)',
      '',
      "Before the load and after it, once idle (the soak's own idle keep-alive connections are still open then, and count among the server's active handles).",
      '',
      '| metric | before | after |',
      '|---|---:|---:|',
    );
    for (const m of r.metrics) out.push(`| \`${m.metric}\` | ${metricValue(m.before)} | ${metricValue(m.after)} |`);
    out.push('');
  }
  const notes: string[] = [];
  if (r.otherCpuCores !== null) {
    notes.push(
      `Other processes on the machine used ${r.otherCpuCores.toFixed(2)} cores on average during the load (1-minute load average ${r.loadAverage[0].toFixed(2)} at the start, ${r.loadAverage[1].toFixed(2)} at the end)` +
        (r.otherCpuCores >= 0.25
          ? ': the machine was shared, so latencies and throughput here say little; the soak is about failures and leaks.'
          : '.'),
    );
  }
  if (r.shutdown)
    notes.push(
      `The spawned server ${r.shutdown.killed ? 'did not stop after SIGTERM and was killed' : `exited with code ${r.shutdown.code} after SIGTERM`}.`,
    );
  if (r.serverLog) {
    const l = r.serverLog;
    const eg = (xs: string[]) => (xs.length ? `, e.g. ${xs.map((e) => `\`${e}\``).join(', ')}` : '');
    notes.push(`The server logged ${l.warnings} warnings and ${l.errors} errors${eg(l.examples)}.`);
    if (l.notJson) notes.push(`The server wrote ${l.notJson} lines to stderr that are not JSON log lines${eg(l.notJsonExamples)}.`);
  }
  notes.push(...(r.notes ?? []));
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
