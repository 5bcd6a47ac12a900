// logit_bias and the repetition, frequency and presence penalties for a batch, applied on the
// device as one sparse scatter-add over the token ids each row has seen (never a dense [B, V]
// from JS). Order as vLLM: bias, then repetition (on the biased logit), then frequency and presence.
//
// A scatter copies the whole [B, V] batch (~2.5 ms at B = 16, V = 49152 on the CPU), so every
// adjustment is a delta in the same scatter: for tokens under the repetition penalty the delta is
// rep(logit + bias) - logit, from a gather of those logits. Building the graph costs ~10 µs an op,
// so the entries are laid out with a few ops per batch rather than a few per row: every row's
// history already on the device first, then every row's recent tokens in one upload.
import type { DeviceTokenList } from './device-token-list.ts';
import type { PenaltyState } from './penalty-state.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface RowPenalties {
  /** Row of the logits batch. */
  batchRow: number;
  state: PenaltyState;
}

const cumsum = mx.cumsum as unknown as (a: MxArray, axis: number) => MxArray;

/** int32 [sum(lengths)]: the run of each entry, for consecutive runs of non-zero lengths. */
function runIndex(lengths: readonly number[]): MxArray {
  const total = lengths.reduce((a, b) => a + b, 0);
  const starts: number[] = [];
  let at = 0;
  for (const length of lengths.slice(0, -1)) starts.push((at += length));
  const marks = mx.zeros([total], mx.int32);
  return starts.length ? cumsum(marks.at(mx.array(starts, mx.int32)).add(mx.array(1, mx.int32)), 0) : marks;
}

interface Run {
  row: number;
  length: number;
  /** One value for every entry, or one each. */
  value: number | MxArray;
}

/**
 * Scatter entries in two sections: runs of ids already on the device, then runs of ids in JS
 * (uploaded together). `offset` positions are final once all runs are added.
 */
class Entries {
  private readonly deviceIds: MxArray[] = [];
  private readonly deviceRuns: Run[] = [];
  private readonly listedIds: number[] = [];
  private readonly listedRuns: Run[] = [];

  get deviceSize(): number {
    return this.deviceRuns.reduce((n, r) => n + r.length, 0);
  }

  get size(): number {
    return this.deviceSize + this.listedIds.length;
  }

  /** Adds a run; returns its start within its section. */
  add(row: number, ids: MxArray | readonly number[] | null, value: number | MxArray): number {
    if (!ids) return -1;
    if (Array.isArray(ids)) {
      const start = this.listedIds.length;
      if (ids.length) {
        this.listedIds.push(...ids);
        this.listedRuns.push({ row, length: ids.length, value });
      }
      return start;
    }
    const start = this.deviceSize;
    const length = (ids as MxArray).shape[0];
    if (length) {
      this.deviceIds.push(ids as MxArray);
      this.deviceRuns.push({ row, length, value });
    }
    return start;
  }

  /** Adds a history list: its uploaded head and its tail. Returns where each part starts. */
  addList(row: number, list: DeviceTokenList, value: number): { head: number; headLength: number; tail: number } {
    const { head, tail } = list.parts();
    return { head: this.add(row, head, value), headLength: head?.shape[0] ?? 0, tail: this.add(row, tail, value) };
  }

  expand(): { rows: MxArray; ids: MxArray; values: MxArray } {
    const runs = [...this.deviceRuns, ...this.listedRuns];
    const run = runIndex(runs.map((r) => r.length));
    const idParts = [...this.deviceIds, ...(this.listedIds.length ? [mx.array(this.listedIds, mx.int32)] : [])];
    const join = (parts: MxArray[]) => (parts.length === 1 ? parts[0] : mx.concatenate(parts, 0));
    const values = runs.every((r) => typeof r.value === 'number')
      ? mx.take(
          mx.array(
            runs.map((r) => r.value as number),
            mx.float32,
          ),
          run,
          0,
        )
      : join(runs.map((r) => (typeof r.value === 'number' ? mx.full([r.length], r.value, mx.float32) : r.value)));
    return {
      rows: mx.take(
        mx.array(
          runs.map((r) => r.row),
          mx.int32,
        ),
        run,
        0,
      ),
      ids: join(idParts),
      values,
    };
  }
}

/** logits [B, V] float32 -> adjusted logits; rows not listed are unchanged. */
export function applyLogitAdjustments(logits: MxArray, rows: readonly RowPenalties[]): MxArray {
  const repeated = new Entries(); // value: the repetition penalty
  const added = new Entries(); // value: added as is
  // Bias on a token under the repetition penalty belongs in that token's delta: (entry, bias).
  const biasOnRepeated: { at: () => number; value: number }[] = [];
  for (const { batchRow, state } of rows) {
    const p = state.params;
    if (p.repetitionPenalty === 1) {
      added.add(batchRow, state.biasIds, state.biasValues ?? 0);
    } else {
      const where = repeated.addList(batchRow, state.repeatedIds, p.repetitionPenalty);
      const plain: (readonly [number, number])[] = [];
      for (const [id, value] of state.bias) {
        const i = state.repeatedIndex(id);
        if (i < 0) plain.push([id, value]);
        else if (i < where.headLength) biasOnRepeated.push({ at: () => where.head + i, value });
        else biasOnRepeated.push({ at: () => repeated.deviceSize + where.tail + (i - where.headLength), value });
      }
      if (plain.length === state.bias.length) added.add(batchRow, state.biasIds, state.biasValues ?? 0);
      else if (plain.length)
        added.add(
          batchRow,
          plain.map(([id]) => id),
          mx.array(
            plain.map(([, v]) => v),
            mx.float32,
          ),
        );
    }
    if (p.frequencyPenalty !== 0) added.addList(batchRow, state.outputIds, -p.frequencyPenalty);
    if (p.presencePenalty !== 0) added.addList(batchRow, state.outputDistinctIds, -p.presencePenalty);
  }

  const rowParts: MxArray[] = [];
  const idParts: MxArray[] = [];
  const deltaParts: MxArray[] = [];
  if (repeated.size) {
    const { rows: r, ids, values: penalty } = repeated.expand();
    const logit = logits.index(r, ids);
    let biased = logit;
    if (biasOnRepeated.length) {
      const at = mx.array(
        biasOnRepeated.map((b) => b.at()),
        mx.int32,
      );
      biased = mx.add(
        logit,
        mx
          .zeros([repeated.size])
          .at(at)
          .add(
            mx.array(
              biasOnRepeated.map((b) => b.value),
              mx.float32,
            ),
          ),
      );
    }
    // vLLM: positive logits are divided by the penalty, negative ones multiplied.
    const penalized = mx.where(mx.greater(biased, 0), mx.divide(biased, penalty), mx.multiply(biased, penalty));
    rowParts.push(r);
    idParts.push(ids);
    deltaParts.push(mx.subtract(penalized, logit));
  }
  if (added.size) {
    const { rows: r, ids, values } = added.expand();
    rowParts.push(r);
    idParts.push(ids);
    deltaParts.push(values);
  }
  if (!idParts.length) return logits;
  const join = (parts: MxArray[]) => (parts.length === 1 ? parts[0] : mx.concatenate(parts, 0));
  // Repeated (row, id) pairs accumulate, which is what the frequency penalty's count needs.
  return logits.at(join(rowParts), join(idParts)).add(join(deltaParts));
}
