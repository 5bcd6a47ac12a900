import { mx, type MxArray } from '../mlx.ts';
// An append-only list of token ids mirrored on the device. Creating an MLX array from JS costs
// ~0.3 µs an element, so a request's history (prompt plus everything generated) must not be
// re-sent every step: whole chunks are uploaded once and only the short tail is sent again.

const CHUNK = 64;

export class DeviceTokenList {
  private readonly ids: number[] = [];
  private uploaded: MxArray | null = null;
  private uploadedLength = 0;

  get length(): number {
    return this.ids.length;
  }

  push(id: number): void {
    this.ids.push(id);
  }

  /**
   * The list as whole chunks already on the device (null when none) followed by the tail still in
   * JS, so a batch can upload every row's tail in one array.
   */
  parts(): { head: MxArray | null; tail: number[] } {
    const whole = this.ids.length - (this.ids.length % CHUNK);
    if (whole > this.uploadedLength) {
      const chunk = mx.array(this.ids.slice(this.uploadedLength, whole), mx.int32);
      this.uploaded = this.uploaded ? mx.concatenate([this.uploaded, chunk], 0) : chunk;
      this.uploadedLength = whole;
    }
    return { head: this.uploaded, tail: this.ids.slice(this.uploadedLength) };
  }

  /** int32 [length] on the device, or null when the list is empty. */
  toDevice(): MxArray | null {
    const { head, tail } = this.parts();
    if (tail.length === 0) return head;
    const rest = mx.array(tail, mx.int32);
    return head ? mx.concatenate([head, rest], 0) : rest;
  }
}
