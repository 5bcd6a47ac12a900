import { mx, type MxArray } from '../mlx.ts';
// Row selection and per-row scaling of a [B, ...] batch.

/** Rows of x by batch index, as a view when they are one contiguous run. */
export function selectRows(x: MxArray, batchRows: readonly number[]): MxArray {
  const first = batchRows[0];
  const contiguous = batchRows.every((r, i) => r === first + i);
  if (contiguous) {
    return first === 0 && batchRows.length === x.shape[0] ? x : x.index(mx.Slice(first, first + batchRows.length));
  }
  return mx.take(x, mx.array(batchRows as number[], mx.int32), 0);
}

/** x [n, ...] divided by each row's temperature; skipped when every one is 1 (a full pass saved). */
export function divideByTemperature(x: MxArray, temperatures: readonly number[]): MxArray {
  if (temperatures.every((t) => t === 1)) return x;
  const shape = [temperatures.length, ...x.shape.slice(1).map(() => 1)];
  return mx.divide(x, mx.array(temperatures as number[], mx.float32).reshape(shape));
}

/**
 * int [n]: argmax of each given row of x. Scattered rows are not copied out when they are most of
 * the batch: an argmax over every row (padding included, harmless) costs less than the copy.
 */
export function rowArgmax(x: MxArray, batchRows: readonly number[]): MxArray {
  const first = batchRows[0];
  const contiguous = batchRows.every((r, i) => r === first + i);
  if (contiguous || batchRows.length * 2 < x.shape[0]) return mx.argmax(selectRows(x, batchRows), -1);
  return mx.take(mx.argmax(x, -1), mx.array(batchRows as number[], mx.int32), 0);
}
