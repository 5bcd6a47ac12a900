// Hands out KV slots (one token's keys and values each) of the native pool. Freed slots are
// reused first, most recent first (their memory is warm); beyond them the pool grows from slot 0
// up, so the memory touched stays as small as the peak number of slots in use.

export class SlotAllocator {
  /** Freed slots; grows as needed. */
  private freed = new Int32Array(1024);
  private freedCount = 0;
  /** Slots [0, highWater) have been handed out at least once. */
  private highWater = 0;

  constructor(readonly capacity: number) {}

  get free(): number {
    return this.capacity - this.highWater + this.freedCount;
  }

  get used(): number {
    return this.highWater - this.freedCount;
  }

  /** One slot, or -1 when none is free. */
  take(): number {
    if (this.freedCount > 0) return this.freed[--this.freedCount];
    return this.highWater < this.capacity ? this.highWater++ : -1;
  }

  release(slots: ArrayLike<number>, from = 0, to = slots.length): void {
    const n = to - from;
    if (n <= 0) return;
    if (this.freedCount + n > this.highWater) throw new Error('more slots released than were taken');
    if (this.freedCount + n > this.freed.length) {
      const grown = new Int32Array(Math.max(this.freed.length * 2, this.freedCount + n));
      grown.set(this.freed.subarray(0, this.freedCount));
      this.freed = grown;
    }
    for (let i = from; i < to; i++) this.freed[this.freedCount++] = slots[i];
  }
}

/** A growable list of slots: a sequence's slot for each of its positions. */
export class SlotList {
  private data: Int32Array;
  length = 0;

  constructor(initial: ArrayLike<number> = [], capacity = 64) {
    this.data = new Int32Array(Math.max(capacity, initial.length));
    this.data.set(initial);
    this.length = initial.length;
  }

  push(slot: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = slot;
  }

  /** A view of slots [0, length); valid until the next push. */
  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }

  /** A copy of slots [from, to). */
  slice(from: number, to: number): Int32Array {
    return this.data.slice(from, to);
  }
}
