// The live server panel: GetServerStatus (over gRPC, like the chats) for the engine's load and
// memory, and the REST port's /metrics (same origin) for token counters, turned into a
// throughput chart drawn with uPlot. Polled once a second.
import { Code, ConnectError } from '@connectrpc/connect';
import uPlot from 'uplot';
import { EngineState, type GetServerStatusResponse } from '../../../src/gen/mlxserve/v1/generation_service_pb.ts';
import { describeCallError, type CallProblem } from './call-errors.ts';
import { el, formatBytes } from './dom.ts';
import { metricSum } from './metrics-text.ts';
import type { GenerationClient } from './service-client.ts';

const POLL_MS = 1000;
/** Seconds of history in the chart. */
const WINDOW = 60;

interface Sample {
  at: number;
  generated: number;
  prompt: number;
}

export class ServerPanel {
  private readonly figures = el('dl', { className: 'figures' });
  private readonly chartBox = el('div', { className: 'chart' });
  private chart: uPlot | undefined;
  private readonly times: number[] = [];
  private readonly generatedRate: number[] = [];
  private readonly promptRate: number[] = [];
  private last: Sample | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    element: HTMLElement,
    private readonly client: GenerationClient,
    private readonly serviceUrl: string,
    /** The service's state for the page's banner: a problem, or undefined once it serves. */
    private readonly onProblem: (problem: CallProblem | undefined) => void,
  ) {
    element.append(el('h2', {}, 'Server'), this.figures, el('h3', {}, 'Throughput (tokens/s)'), this.chartBox);
  }

  start(): void {
    const tick = async () => {
      await Promise.all([this.pollStatus(), this.pollMetrics()]);
      this.timer = setTimeout(tick, POLL_MS);
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private figure(name: string, label: string, value: string): void {
    let dd = this.figures.querySelector<HTMLElement>(`dd[data-figure="${name}"]`);
    if (!dd) {
      dd = el('dd');
      dd.dataset.figure = name;
      this.figures.append(el('dt', {}, label), dd);
    }
    dd.textContent = value;
  }

  private async pollStatus(): Promise<void> {
    let s: GetServerStatusResponse;
    try {
      s = await this.client.getServerStatus({}, { timeoutMs: 5000 });
    } catch (err) {
      const problem = describeCallError(err, this.serviceUrl);
      this.figure('state', 'engine', ConnectError.from(err).code === Code.Unauthenticated ? 'API key needed' : 'unreachable');
      this.onProblem(problem);
      return;
    }
    const state = EngineState[s.engineState]?.toLowerCase() ?? String(s.engineState);
    this.onProblem(
      s.engineState === EngineState.STARTING
        ? { kind: 'loading', message: 'The model is still loading; chats can start once it is ready.' }
        : s.engineState === EngineState.READY
          ? undefined
          : { kind: 'unavailable', message: `503 / UNAVAILABLE: the engine is ${state}.` },
    );
    this.figure('state', 'engine', state);
    this.figure('running', 'running', String(s.runningRequests));
    this.figure('waiting', 'waiting', String(s.waitingRequests));
    this.figure('in-flight', 'in flight (calls)', String(s.inFlightRequests));
    this.figure('kv', 'KV cache', `${formatBytes(Number(s.kvCacheBytesUsed))} / ${formatBytes(Number(s.kvCacheBytesCapacity))}`);
    this.figure('prefix-cache', 'prefix cache', formatBytes(Number(s.prefixCacheBytes)));
    this.figure(
      'hit-rate',
      'prefix hit rate',
      `${(s.prefixCacheHitRate * 100).toFixed(1)}% (${s.prefixCacheHitTokens} / ${s.prefixCacheQueryTokens} tokens)`,
    );
    this.figure('uptime', 'uptime', `${Number(s.uptime?.seconds ?? 0n)} s`);
    this.figure('version', 'version', s.serverVersion);
  }

  private async pollMetrics(): Promise<void> {
    let text: string;
    try {
      const res = await fetch('/metrics', { cache: 'no-store' });
      if (!res.ok) return;
      text = await res.text();
    } catch {
      return; // the REST port is down: the status poll says so
    }
    const sample: Sample = {
      at: performance.now() / 1000,
      generated: metricSum(text, 'vllm:generation_tokens_total') ?? 0,
      prompt: metricSum(text, 'vllm:prompt_tokens_total') ?? 0,
    };
    const last = this.last;
    this.last = sample;
    if (!last) return;
    const dt = sample.at - last.at;
    this.times.push(Date.now() / 1000);
    this.generatedRate.push(Math.max(0, (sample.generated - last.generated) / dt));
    this.promptRate.push(Math.max(0, (sample.prompt - last.prompt) / dt));
    if (this.times.length > WINDOW) [this.times, this.generatedRate, this.promptRate].forEach((a) => a.shift());
    this.draw();
  }

  private draw(): void {
    const data: uPlot.AlignedData = [this.times, this.generatedRate, this.promptRate];
    if (this.chart) {
      this.chart.setData(data);
      return;
    }
    const width = Math.max(200, this.chartBox.clientWidth || 280);
    this.chart = new uPlot(
      {
        width,
        height: 160,
        legend: { show: true },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
        series: [
          {},
          { label: 'generated', stroke: '#2563eb', width: 2, fill: 'rgba(37, 99, 235, 0.12)' },
          { label: 'prompt', stroke: '#d97706', width: 1.5 },
        ],
        axes: [{ size: 30 }, { size: 44 }],
      },
      data,
      this.chartBox,
    );
  }
}
