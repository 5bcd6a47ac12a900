// A soak run: many concurrent clients send a mix of requests for a set time while memory is
// sampled; then, with the load stopped, the server must go back to idle with nothing leaked and
// still answer. Returns everything the report needs.
import cliProgress from 'cli-progress';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSnapshot, otherCpuBetween } from '../client/other-cpu.ts';
import { firstServedModel } from '../client/openai-backend.ts';
import { machineDescription } from '../client/report.ts';
import { seededRng } from '../client/rng.ts';
import { formatDuration } from './duration.ts';
import { grpcBaseUrl, grpcClient, GrpcRequests } from './grpc-requests.ts';
import { MemorySampler, rssSummary } from './memory-sampler.ts';
import { pickKind, sendKind } from './mix.ts';
import { RestRequests } from './openai-requests.ts';
import { describeError, KINDS, type Kind, type Outcome } from './outcome.ts';
import { PromptMix } from './prompts.ts';
import { fetchStatus, idleChecks, waitForIdle, waitForServing, type Check } from './server-status.ts';
import { finishReconciliation, metricIdleChecks, metricRows, restBase, scrapeMetrics } from './server-metrics.ts';
import type { SoakReport, SoakSettings } from './soak-report.ts';
import { spawnServer, type SpawnedServer } from './spawned-server.ts';
import { Tally } from './tally.ts';

export interface SoakOptions extends Omit<SoakSettings, 'durationS' | 'requestTimeoutS' | 'idleTimeoutS' | 'sampleIntervalS'> {
  /** OpenAI base URL of a running server (…/v1). */
  url: string;
  /** gRPC target of a running server (host:port). */
  grpc: string;
  /** Start bin/mlx-batch-server.js instead (url and grpc are then ignored). */
  spawn: boolean;
  /** --model of the spawned server. */
  model?: string;
  /** More arguments of the spawned server. */
  serverArgs: string[];
  /** The running server's pid, for RSS (a spawned server's is known). */
  serverPid?: number;
  apiKey?: string;
  durationMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  readyTimeoutMs: number;
  sampleIntervalMs: number;
  progress: boolean;
  /** Aborting it ends the load early (the checks and the report still follow). */
  stop?: AbortSignal;
  command: string;
  log: (line: string) => void;
}

const MiB = 1024 ** 2;

/** Warnings and errors in the spawned server's JSON log lines, and the lines that are not JSON. */
function serverLogSummary(stderr: string): NonNullable<SoakReport['serverLog']> {
  const out: NonNullable<SoakReport['serverLog']> = { warnings: 0, errors: 0, examples: [], notJson: 0, notJsonExamples: [] };
  const note = (list: string[], text: string) => list.length < 5 && !list.includes(text) && list.push(text.slice(0, 200));
  for (const line of stderr.split('\n')) {
    if (line.trim() === '') continue;
    let rec: { level?: unknown; msg?: unknown };
    try {
      rec = JSON.parse(line);
    } catch {
      out.notJson++;
      note(out.notJsonExamples, line);
      continue;
    }
    const level = typeof rec.level === 'number' ? (rec.level >= 50 ? 'error' : rec.level >= 40 ? 'warn' : 'info') : String(rec.level);
    if (level === 'warn') out.warnings++;
    else if (level === 'error' || level === 'fatal') out.errors++;
    else continue;
    note(out.examples, String(rec.msg));
  }
  return out;
}

/** One REST and one gRPC request after the soak: the server must still answer. */
async function stillServes(rest: RestRequests, grpc: GrpcRequests, prompts: PromptMix): Promise<Check[]> {
  const asked = { body: prompts.chat(), maxTokens: 8, ignoreEos: true };
  const results: Outcome[] = [await rest.complete('openai-chat', asked, false), await grpc.complete('grpc-stream', asked, true)];
  return results.map((o) => ({
    what: `a ${o.kind === 'openai-chat' ? 'REST chat' : 'gRPC GenerateStream'} request after the soak`,
    value: o.result === 'completed' ? 'completed' : `${o.result}: ${o.error ?? ''}`,
    expected: 'completed',
    ok: o.result === 'completed',
  }));
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log;
  let spawned: SpawnedServer | undefined;
  if (o.spawn) {
    log(`starting the server${o.model ? ` with --model ${o.model}` : ''}${o.serverArgs.length ? ` ${o.serverArgs.join(' ')}` : ''}`);
    spawned = await spawnServer(o.model, o.serverArgs);
    log(`server pid ${spawned.pid}: ${spawned.api}, gRPC ${spawned.grpc}`);
  }
  const url = spawned?.api ?? o.url;
  const grpcTarget = spawned?.grpc ?? o.grpc;
  const serverPid = spawned?.pid ?? o.serverPid;
  const spawnedArgs = spawned?.args;
  const statusConn = grpcClient(grpcBaseUrl(grpcTarget), o.apiKey);
  const status = statusConn.client;
  let rest: RestRequests | undefined;
  let grpc: GrpcRequests | undefined;
  try {
    await waitForServing(status, o.readyTimeoutMs);
    const model = await firstServedModel(url, o.apiKey);
    const version = (await status.status()).serverVersion;
    log(`serving ${model} (version ${version}); ${o.clients} clients for ${formatDuration(o.durationMs)}`);
    rest = new RestRequests(url, { model, apiKey: o.apiKey, temperature: o.temperature, timeoutMs: o.requestTimeoutMs });
    grpc = new GrpcRequests(grpcTarget, { apiKey: o.apiKey, temperature: o.temperature, timeoutMs: o.requestTimeoutMs });

    const metricsBefore = await scrapeMetrics(restBase(url), o.apiKey);
    const before = await fetchStatus(status);
    const tally = new Tally();
    const t0 = performance.now();
    const deadline = t0 + o.durationMs;
    const sampler = new MemorySampler(status, serverPid, t0, () => tally.total.sent);
    sampler.start(o.sampleIntervalMs);
    const cpuBefore = cpuSnapshot(serverPid);
    const loadStart = loadavg()[0];

    const bar = o.progress
      ? new cliProgress.SingleBar(
          {
            format:
              'soak |{bar}| {elapsed}/{total_time} | {sent} done, {failed} failed, {refused} refused | running {running}, waiting {waiting} | RSS {rss} MiB',
            stream: process.stderr,
            hideCursor: true,
            fps: 2,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    const payload = () => {
      const s = sampler.latest;
      return {
        elapsed: formatDuration(Math.min(performance.now() - t0, o.durationMs)),
        total_time: formatDuration(o.durationMs),
        sent: tally.total.sent,
        failed: tally.total.failed,
        refused: tally.total.refused,
        running: s?.running ?? '–',
        waiting: s?.waiting ?? '–',
        rss:
          s?.totalBytes != null
            ? (s.totalBytes / MiB).toFixed(0)
            : s?.engineResidentBytes != null
              ? (s.engineResidentBytes / MiB).toFixed(0)
              : '–',
      };
    };
    bar?.start(Math.ceil(o.durationMs / 1000), 0, payload());
    let lastLine = t0;
    const ticker = setInterval(() => {
      const now = performance.now();
      bar?.update(Math.min(Math.floor((now - t0) / 1000), Math.ceil(o.durationMs / 1000)), payload());
      if (!bar && now - lastLine >= 60_000) {
        lastLine = now;
        const p = payload();
        log(
          `${p.elapsed}: ${p.sent} done, ${p.failed} failed, ${p.refused} refused, running ${p.running}, waiting ${p.waiting}, RSS ${p.rss} MiB`,
        );
      }
    }, 1000);

    const stopped = () => o.stop?.aborted === true || performance.now() >= deadline;
    const client = async (i: number) => {
      const rng = seededRng(o.seed * 1009 + i + 1);
      const prompts = new PromptMix(rng, o);
      // Spread the first requests over a moment rather than sending all at once.
      await sleep(Math.floor(rng() * Math.min(2000, o.durationMs / 10)));
      while (!stopped()) {
        const kind: Kind = pickKind(rng, o.weights);
        let outcomes: Outcome[];
        try {
          outcomes = await sendKind(kind, rest as RestRequests, grpc as GrpcRequests, prompts, rng);
        } catch (err) {
          outcomes = [{ kind, result: 'failed', error: `the soak client threw: ${describeError(err)}`, outputTokens: 0, ms: 0 }];
        }
        for (const out of outcomes) tally.add(out);
      }
    };
    await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)));
    const loadS = (performance.now() - t0) / 1000;
    clearInterval(ticker);
    sampler.stop();
    bar?.update(Math.ceil(o.durationMs / 1000), payload());
    bar?.stop();
    const otherCpu = otherCpuBetween(cpuBefore, cpuSnapshot(serverPid), loadS);
    const loadEnd = loadavg()[0];
    log(
      `load done after ${formatDuration(loadS * 1000)}: ${tally.total.sent} requests, ${tally.total.failed} failed; waiting for the server to be idle`,
    );

    const idle = await waitForIdle(status, o.idleTimeoutMs);
    await sampler.sample('idle');
    const metricsAfter = await scrapeMetrics(restBase(url), o.apiKey);
    const checks: Check[] = [];
    if (idle.last) checks.push(...idleChecks(idle.last, before.engineRestarts));
    else checks.push({ what: 'GetServerStatus', value: idle.error ?? 'no answer', expected: 'an answer', ok: false });
    checks.push(...metricIdleChecks(metricsAfter));
    checks.push(...finishReconciliation(metricsBefore, metricsAfter, tally.total));
    checks.push(...(await stillServes(rest, grpc, new PromptMix(seededRng(o.seed), o))));

    const counts = tally.byKind();
    const missing = KINDS.filter((k) => o.weights[k] > 0 && !counts.some((c) => c.kind === k && c.sent > 0));
    const reasons: string[] = [];
    if (tally.total.failed > 0) reasons.push(`${tally.total.failed} unexpected failures`);
    if (!idle.idle) reasons.push('the server did not return to idle');
    for (const c of checks.filter((c) => c.ok === false)) reasons.push(`${c.what} is ${c.value} (expected ${c.expected})`);
    if (missing.length) reasons.push(`no request of kind ${missing.join(', ')} was sent`);

    let shutdown: SoakReport['shutdown'];
    let serverLog: SoakReport['serverLog'];
    if (spawned) {
      log('stopping the server (SIGTERM)');
      shutdown = await spawned.stop();
      serverLog = serverLogSummary(spawned.stderr());
      if (shutdown.code !== 0)
        reasons.push(`the server exited with ${shutdown.killed ? 'SIGKILL after SIGTERM timed out' : `code ${shutdown.code}`}`);
      if (serverLog.notJson > 0) reasons.push(`the server wrote ${serverLog.notJson} lines to stderr that are not JSON logs`);
      spawned = undefined;
    }
    return {
      date: new Date().toISOString().slice(0, 10),
      machine: machineDescription(),
      command: o.command,
      server: {
        mode: o.spawn ? 'spawned' : 'external',
        openaiUrl: url,
        grpcTarget,
        pid: serverPid ?? null,
        args: spawnedArgs,
        model,
        version,
      },
      settings: {
        clients: o.clients,
        durationS: o.durationMs / 1000,
        requestTimeoutS: o.requestTimeoutMs / 1000,
        idleTimeoutS: o.idleTimeoutMs / 1000,
        sampleIntervalS: o.sampleIntervalMs / 1000,
        minTokens: o.minTokens,
        maxTokens: o.maxTokens,
        cutMaxTokens: o.cutMaxTokens,
        temperature: o.temperature,
        seed: o.seed,
        weights: o.weights,
      },
      loadS,
      counts,
      errors: tally.errorCounts(),
      memory: {
        samples: sampler.samples,
        treeRss: rssSummary(sampler.samples, (s) => s.totalBytes),
        engineResident: rssSummary(sampler.samples, (s) => s.engineResidentBytes),
        statusFailures: sampler.statusFailures,
        withoutEngineFigures: sampler.withoutEngineFigures,
      },
      idle: { reached: idle.idle, waitedS: idle.waitedMs / 1000, status: idle.last, error: idle.error },
      checks,
      metrics: metricRows(metricsBefore, metricsAfter),
      otherCpuCores: otherCpu?.cores ?? null,
      loadAverage: [loadStart, loadEnd],
      shutdown,
      serverLog,
      verdict: { pass: reasons.length === 0, reasons },
    };
  } finally {
    await rest?.close();
    await grpc?.close();
    statusConn.manager.abort();
    if (spawned) await spawned.stop(5000);
  }
}
