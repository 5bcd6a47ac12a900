// Entry point of the engine process. MLX runs here, away from the server's event loop; an MLX
// fault (which aborts the process) costs the requests in flight, not the server.
//
// Between steps the loop yields to the event loop so IPC messages (new requests, cancels) are
// handled, and so that finalizers of released MLX arrays run (which lets MLX update the KV buffers
// in place instead of copying them).
import { EngineCore } from './engine-core.ts';
import type { AdapterErrorCode, FromEngine, ToEngine } from './engine-protocol.ts';
import { GrammarMatchers } from './grammar/grammar-matchers.ts';
import { loadModel, type LoadedModel } from './load-model.ts';
import { LoraAdapterError } from './lora/lora-adapter-error.ts';
import { LoraRegistryError } from './lora/lora-registry.ts';
import type { EngineEvent, EngineStats } from './request.ts';

const collectGarbage = (globalThis as { gc?: (opts: { type: 'minor' | 'major' }) => void }).gc;

function send(msg: FromEngine): void {
  process.send?.(msg);
}

let core: EngineCore | undefined;
let model: LoadedModel | undefined;
let pending: EngineEvent[] = [];
let looping = false;
/** Grammars of structured-output requests, once the server sent the vocabulary. */
let grammars: GrammarMatchers | undefined;
/** When the last full garbage collection ran (see the end of loop()). */
let lastMajorGc = performance.now();
/**
 * Seconds between full collections while the engine works. Handles that survived a few minor
 * collections (arrays kept across steps: KV buffers replaced on relayout, prefix-cache blocks
 * evicted) are only freed by a full one, which V8 would run late: node-mlx does not report the
 * memory behind a handle, so V8 sees a small heap while MLX holds gigabytes. One every few
 * seconds costs well under 1% of a step's time. It returns the buffers to the allocator; whether
 * RSS falls too depends on glibc (see MALLOC_MMAP_THRESHOLD_ in the README's operating notes).
 */
const MAJOR_GC_INTERVAL_MS = 5000;
const earlyMessages: ToEngine[] = [];

/** Sends the events of the last step with the figures as they stand after it; false if none. */
function flushEvents(): boolean {
  if (pending.length === 0) return false;
  const stats = core?.stats();
  send({ type: 'events', events: pending, stats });
  pending = [];
  if (stats) noteStatsSent(stats);
  return true;
}

/**
 * Sends the engine's figures: the server answers status calls and scrapes from the latest, at
 * once, whatever the engine is doing (a step can take a while). They travel with every step's
 * events; a step that emitted nothing (a prompt chunk) sends them when the number of running or
 * waiting requests changed, else at most every STATS_INTERVAL_MS.
 */
const STATS_INTERVAL_MS = 200;
let lastStats = 0;
let lastCounts = '';
function noteStatsSent(stats: EngineStats): void {
  lastStats = performance.now();
  lastCounts = `${stats.running}/${stats.waiting}`;
}
function sendStats(force: boolean): void {
  if (!core) return;
  const stats = core.stats();
  const counts = `${stats.running}/${stats.waiting}`;
  if (!force && counts === lastCounts && performance.now() - lastStats < STATS_INTERVAL_MS) return;
  noteStatsSent(stats);
  send({ type: 'stats', stats });
}

function handle(msg: ToEngine): void {
  if (msg.type === 'init') return void init(msg);
  if (msg.type === 'grammar-vocabulary') {
    void grammars?.close();
    grammars = new GrammarMatchers(msg.vocabulary);
    if (core) core.constraints = grammars;
    return;
  }
  if (msg.type === 'shutdown') {
    flushEvents();
    process.exit(0);
  }
  if (!core) {
    earlyMessages.push(msg);
    return;
  }
  switch (msg.type) {
    case 'submit':
      core.submit(msg.request);
      if (!flushEvents()) sendStats(true);
      kick();
      break;
    case 'cancel':
      core.cancel(msg.requestId);
      kick();
      break;
    case 'load-adapter':
    case 'unload-adapter':
      changeAdapters(core, msg);
      break;
  }
}

/** Loads or unloads a LoRA adapter and answers with the adapters served after it (or why not). */
function changeAdapters(c: EngineCore, msg: Extract<ToEngine, { type: 'load-adapter' | 'unload-adapter' }>): void {
  const answer = (error?: { code: AdapterErrorCode; message: string }) => {
    // An unload drains inside a step: the events of its last requests go first.
    flushEvents();
    send({ type: 'adapter-result', callId: msg.callId, adapters: c.adapters(), error });
  };
  try {
    if (msg.type === 'load-adapter') {
      c.loadAdapter(msg.name, msg.path);
      answer();
    } else {
      c.unloadAdapter(msg.name, () => answer());
    }
  } catch (e) {
    const code = e instanceof LoraRegistryError ? e.code : e instanceof LoraAdapterError ? 'invalid_argument' : 'internal';
    answer({ code, message: (e as Error).message });
  }
}

async function init(msg: Extract<ToEngine, { type: 'init' }>): Promise<void> {
  try {
    model = await loadModel(msg.config.model, {
      cacheDir: msg.config.cacheDir,
      onProgress: (done, total) => send({ type: 'progress', done, total }),
      cpuKernels: msg.config.engine.cpuKernels,
      threads: msg.config.engine.threads,
      dtype: msg.config.engine.dtype,
      quantization: msg.config.engine.quantization,
    });
    core = new EngineCore(model, msg.config.engine, (e) => pending.push(e));
    core.constraints = grammars;
    core.wake = () => {
      if (!flushEvents()) sendStats(true);
      kick();
    };
    core.warmUp();
    // The file buffers the weights were read from are garbage now (the native path copied them
    // into its arena): collect them before serving rather than whenever V8 gets to it.
    collectGarbage?.({ type: 'major' });
    send({
      type: 'ready',
      info: {
        ...core.info(),
        runtime: model.runtime,
        runtimeFallback: model.fallbackReason,
        weightBytes: model.weightBytes,
        precision: model.precision,
        precisionWarning: model.precisionWarning,
      },
    });
    sendStats(true);
    for (const m of earlyMessages.splice(0)) handle(m);
  } catch (e) {
    send({ type: 'fatal', message: (e as Error).message });
    process.exit(1);
  }
}

/** Runs steps while there is work, yielding to the event loop between steps. */
function kick(): void {
  if (looping || !core) return;
  looping = true;
  setImmediate(loop);
}

function loop(): void {
  const c = core as EngineCore;
  if (!c.hasWork()) {
    looping = false;
    sendStats(true);
    return;
  }
  try {
    c.step();
  } catch (e) {
    // A JS error inside a step leaves the batch in an unknown state: fail what was running.
    c.failAll(`internal engine error: ${(e as Error).message}`);
    console.error(e);
  }
  if (!flushEvents()) sendStats(false);
  // On the MLX path a young-generation collection frees the JS handles of this step's MLX arrays;
  // their finalizers (which run on the next turn of the event loop) release the arrays' buffers.
  // Without it, MLX memory is only returned when V8 happens to collect, which it does late
  // because it cannot see that memory. The native path needs none of this.
  if (model?.freesMemoryOnGc) {
    if (performance.now() - lastMajorGc >= MAJOR_GC_INTERVAL_MS) {
      collectGarbage?.({ type: 'major' });
      lastMajorGc = performance.now();
    } else collectGarbage?.({ type: 'minor' });
  }
  // Let IPC and finalizers run before the next step.
  setImmediate(loop);
}

process.on('message', (m) => handle(m as ToEngine));
process.on('disconnect', () => process.exit(0));
