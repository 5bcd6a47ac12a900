// The server's Prometheus metrics (GET /metrics at the REST base) before and after the soak: the
// load gauges must be back at 0, and the counters' changes say what the server saw.
import { metricValue, scrape, type Sample } from '../../test/helpers/prometheus-text.ts';
import type { Counts } from './tally.ts';
import type { Check } from './server-status.ts';

/** Metrics worth a row in the report, gauges first. Absent ones are left out. */
const REPORTED = [
  'vllm:num_requests_running',
  'vllm:num_requests_waiting',
  'mlxserve:requests_in_flight',
  'mlxserve:prefix_cache_locked_bytes',
  'mlxserve:kv_cache_used_bytes',
  'mlxserve:prefix_cache_bytes',
  'mlxserve:engine_resident_memory_bytes',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_active_handles_total',
  'vllm:request_success_total',
  'mlxserve:request_errors_total',
  'vllm:prompt_tokens_total',
  'vllm:generation_tokens_total',
  'vllm:prefix_cache_queries_total',
  'vllm:prefix_cache_hits_total',
  'vllm:num_preemptions_total',
  'mlxserve:engine_restarts_total',
  'http_requests_total',
];

/** Gauges an idle server must show at 0. */
const IDLE_ZERO = [
  'vllm:num_requests_running',
  'vllm:num_requests_waiting',
  'mlxserve:requests_in_flight',
  'mlxserve:prefix_cache_locked_bytes',
];

export interface MetricRow {
  /** name{labels}, without the model label. */
  metric: string;
  before: number | null;
  after: number | null;
}

/** The REST base (http://host:port) from the OpenAI base URL. */
export function restBase(openaiUrl: string): string {
  return openaiUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** GET /metrics, or undefined when the server has none (or refuses it). */
export async function scrapeMetrics(base: string, apiKey?: string): Promise<Sample[] | undefined> {
  try {
    return await scrape(base, apiKey ? { authorization: `Bearer ${apiKey}` } : {});
  } catch {
    return undefined;
  }
}

function key(s: Sample): string {
  const labels = Object.entries(s.labels)
    .filter(([k]) => k !== 'model_name')
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return labels ? `${s.name}{${labels}}` : s.name;
}

/** Values by name{labels} of the reported metrics (labels other than the model kept apart). */
function reportedValues(samples: Sample[] | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples ?? []) {
    if (!REPORTED.includes(s.name)) continue;
    out.set(key(s), (out.get(key(s)) ?? 0) + s.value);
  }
  return out;
}

export function metricRows(before: Sample[] | undefined, after: Sample[] | undefined): MetricRow[] {
  const b = reportedValues(before);
  const a = reportedValues(after);
  const keys = [...new Set([...b.keys(), ...a.keys()])];
  const rank = (k: string) => REPORTED.indexOf(k.replace(/\{.*$/, ''));
  keys.sort((x, y) => rank(x) - rank(y) || x.localeCompare(y));
  return keys.map((metric) => ({ metric, before: b.get(metric) ?? null, after: a.get(metric) ?? null }));
}

/** The idle gauges of /metrics after the soak (those the server exposes). */
export function metricIdleChecks(after: Sample[] | undefined): Check[] {
  if (!after) return [];
  return IDLE_ZERO.filter((name) => after.some((s) => s.name === name)).map((name) => {
    const v = after.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
    return { what: `/metrics ${name}`, value: String(v), expected: '0', ok: v === 0 };
  });
}

/**
 * The server's count of finished requests by reason against the soak's own (reported, not judged:
 * an answer that ends just as its client goes away counts as finished on one side and abandoned on
 * the other, and other clients of a shared server count too).
 */
export function finishReconciliation(before: Sample[] | undefined, after: Sample[] | undefined, soak: Counts): Check[] {
  if (!before || !after) return [];
  const delta = (reason: string) =>
    metricValue(after, 'vllm:request_success_total', { finished_reason: reason }) -
    metricValue(before, 'vllm:request_success_total', { finished_reason: reason });
  const finished = delta('stop') + delta('length');
  const aborted = delta('abort');
  return [
    {
      what: '/metrics vllm:request_success_total stop + length, against requests the soak saw complete',
      value: `${finished} / ${soak.completed}`,
      expected: 'equal',
      ok: null,
    },
    {
      what: '/metrics vllm:request_success_total abort, against requests the soak cancelled or abandoned',
      value: `${aborted} / ${soak.cancelled + soak.disconnected}`,
      expected: 'equal',
      ok: null,
    },
  ];
}
