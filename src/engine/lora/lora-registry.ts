// The LoRA adapters an engine serves, and which of them sit in the model's slots. Requests name an
// adapter; when one is admitted to the batch its adapter must be resident: a free slot takes it, or
// the least recently used adapter no admitted request is using makes room. When every slot is in
// use the request waits (the batch mixes at most --max-loras adapters). Unloading stops new
// requests at once and completes when the requests already using the adapter have finished.
import type { AdapterInfo } from '../request.ts';
import { type LoraBaseModel, readLoraAdapter } from './lora-adapter.ts';
import { type LoraShapes, type LoraUpdate, loraUpdates } from './lora-updates.ts';

/** Where resident adapters live (the backend's model). */
export interface LoraSlotHost {
  /** Puts an adapter's updates in a slot (replacing what was there), or empties the slot. */
  setLoraSlot(slot: number, updates: readonly LoraUpdate[] | undefined): void;
}

export interface LoraLimits {
  /** Adapters resident at once (--max-loras). */
  maxLoras: number;
  /** The largest rank served (--max-lora-rank). */
  maxRank: number;
}

/** An adapter being served. Opaque outside the engine core and this file. */
export interface ServedAdapter {
  readonly info: AdapterInfo;
  /**
   * Unique among every adapter loaded by this engine, the same name loaded again included: keeps
   * prefix-cache entries computed under one adapter from being found under another.
   */
  readonly generation: number;
}

interface AdapterState extends ServedAdapter {
  updates: LoraUpdate[];
  /** Requests submitted with it and not ended. */
  requests: number;
  /** Of those, the ones admitted to the batch now (they need it resident). */
  admitted: number;
  slot: number | undefined;
  lastUsed: number;
  /** Set by unload: called when the last request has ended. */
  onDrained?: () => void;
}

/** Why an adapter could not be loaded, unloaded or used; `code` as the engine's error codes. */
export class LoraRegistryError extends Error {
  constructor(
    readonly code: 'invalid_argument' | 'not_found' | 'already_exists',
    message: string,
  ) {
    super(message);
  }
}

export class LoraRegistry {
  private readonly byName = new Map<string, AdapterState>();
  /** Unloaded adapters whose requests have not all ended. */
  private readonly draining = new Set<AdapterState>();
  private readonly slots: (AdapterState | undefined)[];
  private generations = 0;
  private clock = 0;

  constructor(
    private readonly base: LoraBaseModel & { config: LoraShapes },
    private readonly limits: LoraLimits,
    private readonly host: LoraSlotHost,
  ) {
    this.slots = new Array(limits.maxLoras).fill(undefined);
  }

  /** The adapters served, in load order. */
  list(): AdapterInfo[] {
    return [...this.byName.values()].map((a) => a.info);
  }

  /** Reads an adapter and serves it as `name` (throws LoraAdapterError for a bad one). */
  load(name: string, path: string): AdapterInfo {
    if (typeof name !== 'string' || name.length === 0) throw new LoraRegistryError('invalid_argument', 'an adapter needs a name');
    if (this.byName.has(name)) throw new LoraRegistryError('already_exists', `the LoRA adapter "${name}" is already loaded`);
    const adapter = readLoraAdapter(path, this.base, { maxRank: this.limits.maxRank });
    const modules = [...new Set(adapter.modules.map((m) => m.module))];
    const layers = new Set(adapter.modules.map((m) => m.layer)).size;
    const info: AdapterInfo = {
      name,
      path,
      format: adapter.format,
      rank: adapter.rank,
      scale: adapter.scale,
      modules,
      layers,
      loadedAt: Math.floor(Date.now() / 1000),
    };
    const state: AdapterState = {
      info,
      generation: ++this.generations,
      updates: loraUpdates(adapter, this.base.config),
      requests: 0,
      admitted: 0,
      slot: undefined,
      lastUsed: 0,
    };
    this.byName.set(name, state);
    return info;
  }

  /**
   * Stops serving `name`: requests naming it are refused from now on; `drained` is called once
   * the requests using it have ended (at once when none does), and its slot is freed then.
   */
  unload(name: string, drained: () => void): void {
    const a = this.byName.get(name);
    if (!a) throw new LoraRegistryError('not_found', `the LoRA adapter "${name}" is not loaded`);
    this.byName.delete(name);
    this.draining.add(a);
    a.onDrained = drained;
    if (a.requests === 0) this.retire(a);
  }

  /** The adapter a new request names (counted until `end`); throws not_found. */
  use(name: string): ServedAdapter {
    const a = this.byName.get(name);
    if (!a) throw new LoraRegistryError('not_found', `the model "${name}" does not exist (no LoRA adapter of that name is loaded)`);
    a.requests++;
    return a;
  }

  /** A request using `adapter` has ended (finished, refused or expired). */
  end(adapter: ServedAdapter): void {
    const a = adapter as AdapterState;
    a.requests--;
    if (a.requests === 0 && a.onDrained) this.retire(a);
  }

  /**
   * A request using `adapter` joins the batch: returns the slot it computes with (loading the
   * adapter there if needed), or undefined when every slot holds an adapter in use.
   */
  admit(adapter: ServedAdapter): number | undefined {
    const a = adapter as AdapterState;
    if (a.slot === undefined) {
      const slot = this.freeSlot();
      if (slot === undefined) return undefined;
      const previous = this.slots[slot];
      if (previous) previous.slot = undefined;
      this.slots[slot] = a;
      a.slot = slot;
      this.host.setLoraSlot(slot, a.updates);
    }
    a.admitted++;
    a.lastUsed = ++this.clock;
    return a.slot;
  }

  /** A request using `adapter` left the batch (it ended or was preempted). */
  leave(adapter: ServedAdapter): void {
    (adapter as AdapterState).admitted--;
  }

  /** An empty slot, else the one of the least recently used adapter nobody admitted uses. */
  private freeSlot(): number | undefined {
    const empty = this.slots.indexOf(undefined);
    if (empty >= 0) return empty;
    let best: number | undefined;
    this.slots.forEach((a, i) => {
      if (a && a.admitted === 0 && (best === undefined || a.lastUsed < (this.slots[best] as AdapterState).lastUsed)) best = i;
    });
    return best;
  }

  /** Adapters the batch computes with now, and adapters requests wait for (not yet admitted). */
  usage(): { running: string[]; waiting: string[] } {
    const all = [...this.byName.values(), ...this.draining];
    return {
      running: all.filter((a) => a.admitted > 0).map((a) => a.info.name),
      waiting: all.filter((a) => a.requests > a.admitted).map((a) => a.info.name),
    };
  }

  private retire(a: AdapterState): void {
    this.draining.delete(a);
    if (a.slot !== undefined) {
      this.slots[a.slot] = undefined;
      this.host.setLoraSlot(a.slot, undefined);
      a.slot = undefined;
    }
    const drained = a.onDrained;
    a.onDrained = undefined;
    drained?.();
  }
}
