// Counts of what the soak's requests did, by kind and result, with the errors behind each failure
// and refusal and the latencies of the completed requests.
import { distribution, type Distribution } from '../client/percentiles.ts';
import { KINDS, type Kind, type Outcome, type Result } from './outcome.ts';

export type Counts = Record<Result, number> & { sent: number; outputTokens: number };

export interface KindSummary extends Counts {
  kind: Kind | 'total';
  /** End-to-end ms of the completed requests. */
  latencyMs: Distribution;
}

export interface ErrorCount {
  kind: Kind;
  result: 'failed' | 'refused';
  error: string;
  count: number;
}

function zero(): Counts {
  return { sent: 0, completed: 0, cancelled: 0, disconnected: 0, refused: 0, failed: 0, outputTokens: 0 };
}

export class Tally {
  private readonly counts = new Map<Kind, Counts>(KINDS.map((k) => [k, zero()]));
  private readonly latencies = new Map<Kind, number[]>(KINDS.map((k) => [k, []]));
  private readonly errors = new Map<string, ErrorCount>();
  readonly total: Counts = zero();

  add(o: Outcome): void {
    for (const c of [this.counts.get(o.kind) as Counts, this.total]) {
      c.sent++;
      c[o.result]++;
      c.outputTokens += o.outputTokens;
    }
    if (o.result === 'completed') this.latencies.get(o.kind)?.push(o.ms);
    if ((o.result === 'failed' || o.result === 'refused') && o.error !== undefined) {
      const key = `${o.kind}\u0000${o.result}\u0000${o.error}`;
      const e = this.errors.get(key) ?? { kind: o.kind, result: o.result, error: o.error, count: 0 };
      e.count++;
      this.errors.set(key, e);
    }
  }

  byKind(): KindSummary[] {
    const rows: KindSummary[] = KINDS.map((kind) => ({
      kind,
      ...(this.counts.get(kind) as Counts),
      latencyMs: distribution(this.latencies.get(kind) as number[]),
    }));
    rows.push({ kind: 'total', ...this.total, latencyMs: distribution([...this.latencies.values()].flat()) });
    return rows;
  }

  /** Failures and refusals by kind and message, most frequent first. */
  errorCounts(): ErrorCount[] {
    return [...this.errors.values()].sort((a, b) => b.count - a.count);
  }
}
