import { mx, type MxArray } from '../mlx.ts';
// Reads many small device arrays back to JS with one evaluation and one tolist per dtype: each
// eval costs ~70 µs and each tolist a call into the binding, which add up at a few per row.

export class Readback {
  private readonly ints: MxArray[] = [];
  private readonly floats: MxArray[] = [];
  private intCount = 0;
  private floatCount = 0;
  private readonly readers: ((ints: number[], floats: number[]) => void)[] = [];

  /** Queues an integer array; `read` gets its values, flattened, after run(). */
  int(x: MxArray, read: (values: number[]) => void): void {
    const at = this.intCount;
    this.intCount += x.size;
    this.ints.push(x.astype(mx.int32).reshape([-1]));
    this.readers.push((ints) => read(ints.slice(at, at + x.size)));
  }

  /** Queues a float array; `read` gets its values, flattened, after run(). */
  float(x: MxArray, read: (values: number[]) => void): void {
    const at = this.floatCount;
    this.floatCount += x.size;
    this.floats.push(x.astype(mx.float32).reshape([-1]));
    this.readers.push((_, floats) => read(floats.slice(at, at + x.size)));
  }

  run(): void {
    const join = (parts: MxArray[]) => (parts.length === 0 ? null : parts.length === 1 ? parts[0] : mx.concatenate(parts, 0));
    const ints = join(this.ints);
    const floats = join(this.floats);
    const outputs = [ints, floats].filter((x): x is MxArray => x !== null);
    if (outputs.length === 0) return;
    mx.eval(...outputs);
    const intValues = ints ? (ints.tolist() as number[]) : [];
    const floatValues = floats ? (floats.tolist() as number[]) : [];
    for (const read of this.readers) read(intValues, floatValues);
  }
}
