// Server-level Prometheus metrics, read from the engine when Prometheus scrapes: what runs and
// waits, KV and prefix-cache memory, the engine process's state, restarts and memory. They are
// the engine's own latest figures (it sends them as it works), the same GetServerStatus reports,
// so a scrape answers at once whatever the engine is doing. Names are vLLM's where there is one.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EngineState } from '../engine/engine-client.ts';
import type { EngineStats } from '../engine/request.ts';
import type { ServingState } from './serving-state.ts';

const ENGINE_STATES: EngineState[] = ['starting', 'ready', 'restarting', 'failed', 'stopped'];

/**
 * The engine's cumulative counters start from 0 in each engine process; the service keeps them
 * monotonic over restarts by adding up what earlier processes had counted.
 */
class CumulativeCount {
  private base = 0;
  private last = 0;

  update(current: number): number {
    if (current < this.last) this.base += this.last; // a new engine process counts from 0
    this.last = current;
    return this.total;
  }

  get total(): number {
    return this.base + this.last;
  }
}

export function registerEngineMetrics(registry: Registry, state: ServingState): void {
  const registers = [registry];
  const sample = () => state.engineStats();
  const model = () => ({ model_name: state.engine.modelInfo?.id ?? '' });

  /** A gauge per engine figure, labelled with the model (0 while the engine is not ready). */
  const engineGauge = (name: string, help: string, value: (s: EngineStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['model_name'],
      registers,
      collect() {
        const stats = sample();
        this.reset();
        this.set(model(), stats ? value(stats) : 0);
      },
    });
  /** A counter from one of the engine's cumulative figures. */
  const engineCounter = (name: string, help: string, value: (s: EngineStats) => number) => {
    const total = new CumulativeCount();
    return new Counter({
      name,
      help,
      labelNames: ['model_name'],
      registers,
      collect() {
        const stats = sample();
        // No figures (the engine is restarting): keep the total; a 0 here would look like a new
        // engine process and count everything again on the next scrape.
        const count = stats ? total.update(value(stats)) : total.total;
        this.reset();
        this.inc(model(), count);
      },
    });
  };

  engineGauge('vllm:num_requests_running', 'Requests in the running batch (prefilling or decoding).', (s) => s.running);
  engineGauge('vllm:num_requests_waiting', 'Requests queued for a batch slot or KV memory.', (s) => s.waiting);
  engineGauge(
    'vllm:kv_cache_usage_perc',
    'KV of the tokens running requests hold (cached prefixes they reuse included) / --kv-cache-bytes (0 to 1).',
    (s) => (s.kvBytesCapacity > 0 ? Math.min(1, s.kvBytesUsed / s.kvBytesCapacity) : 0),
  );
  engineGauge(
    'vllm:gpu_prefix_cache_hit_rate',
    "Prompt tokens served from the prefix cache / prompt tokens looked up, since the engine process started (vLLM v0's name; the cache is in main memory here).",
    (s) => (s.prefixCacheQueries > 0 ? s.prefixCacheHits / s.prefixCacheQueries : 0),
  );
  engineCounter('vllm:prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.', (s) => s.prefixCacheQueries);
  engineCounter('vllm:prefix_cache_hits_total', 'Prompt tokens served from the prefix cache.', (s) => s.prefixCacheHits);
  engineCounter('vllm:num_preemptions_total', 'Running requests moved back to the queue to free KV memory.', (s) => s.preemptions);
  engineGauge(
    'mlxserve:kv_cache_used_bytes',
    'Bytes of KV of the tokens running requests hold, cached prefixes they reuse included (0 when idle).',
    (s) => s.kvBytesUsed,
  );
  engineGauge(
    'mlxserve:kv_cache_allocated_bytes',
    'Bytes of memory held for KV now: running requests and the prefix cache together.',
    (s) => s.kvBytesAllocated,
  );
  engineGauge(
    'mlxserve:kv_cache_capacity_bytes',
    'Bytes of KV cache the running batch may hold (--kv-cache-bytes).',
    (s) => s.kvBytesCapacity,
  );
  engineGauge(
    'mlxserve:prefix_cache_bytes',
    'Bytes of KV the prefix cache keeps, used by a running request or not.',
    (s) => s.prefixCacheBytes,
  );
  engineGauge(
    'mlxserve:prefix_cache_locked_bytes',
    'Prefix-cache bytes locked by running requests (0 when idle).',
    (s) => s.prefixCacheLockedBytes,
  );
  engineGauge('mlxserve:engine_resident_memory_bytes', 'Resident memory of the engine process.', (s) => s.residentBytes);

  new Gauge({
    name: 'vllm:lora_requests_info',
    help: "LoRA adapters in use: labels name those the running batch computes with and those requests wait for (comma-separated), and --max-loras; the value is when the figures were taken (Unix seconds). vLLM's metric, read by LoRA-aware routers.",
    labelNames: ['max_lora', 'running_lora_adapters', 'waiting_lora_adapters'],
    registers,
    collect() {
      const stats = sample();
      this.reset();
      if (!stats) return;
      const { running, waiting, maxLoras } = stats.lora;
      this.set(
        { max_lora: String(maxLoras), running_lora_adapters: running.join(','), waiting_lora_adapters: waiting.join(',') },
        Date.now() / 1000,
      );
    },
  });
  new Gauge({
    name: 'mlxserve:engine_state',
    help: 'The engine process state: 1 for the current one of starting, ready, restarting, failed, stopped.',
    labelNames: ['state'],
    registers,
    collect() {
      for (const s of ENGINE_STATES) this.set({ state: s }, state.engine.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'mlxserve:serving',
    help: '1 while new generation requests are taken (engine ready, server not draining), as health reports SERVING.',
    registers,
    collect() {
      this.set(state.serving ? 1 : 0);
    },
  });
  new Counter({
    name: 'mlxserve:engine_restarts_total',
    help: 'Times the engine process was restarted after it died.',
    registers,
    collect() {
      this.reset();
      this.inc(state.engine.restarts);
    },
  });
  new Gauge({
    name: 'mlxserve:requests_in_flight',
    help: 'Generation requests the service holds (running, queued, or sending their last events).',
    registers,
    collect() {
      this.set(state.inFlight);
    },
  });
}
