// The grammar worker: one thread holding an XGrammar instance (WebAssembly), its compiled grammars
// and the matchers of the requests using them. Compiling a grammar can take from milliseconds to
// seconds, so it happens here, never on the engine's step loop. After each token a request's
// matcher advances here and writes the next step's token bitmask into memory shared with the
// engine (grammar-matchers.ts explains the protocol). XGrammar has no way to move a compiled
// grammar between instances, so a matcher lives in the worker that compiled its grammar.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { StructuredOutput } from '../structured-output.ts';
import { choiceGrammar } from '../structured-output.ts';
import type { GrammarVocabulary } from './grammar-vocabulary.ts';
import { STATE_HEADER, Status, type ToWorker, type FromWorker, type WorkerSetup } from './grammar-worker-protocol.ts';
import { loadXGrammar } from './xgrammar-module.ts';

type XG = ReturnType<typeof loadXGrammar>;
type CompiledGrammar = Awaited<
  ReturnType<Awaited<ReturnType<XG['GrammarCompiler']['createGrammarCompiler']>>['compileBuiltinJSONGrammar']>
>;
type GrammarMatcher = Awaited<ReturnType<XG['GrammarMatcher']['createGrammarMatcher']>>;

interface Matcher {
  matcher: GrammarMatcher;
  state: Int32Array;
  version: number;
  /** Tokens masked out on top of the grammar's mask (see GrammarVocabulary.controlTokenIds). */
  forbidden?: Int32Array;
}

const port = parentPort;
if (!port) throw new Error('grammar-worker.ts runs as a worker thread');
const setup = workerData as WorkerSetup;
const control = new Int32Array(setup.control);
const xg = loadXGrammar();
const matchers = new Map<number, Matcher>();
const cache = new Map<string, CompiledGrammar>();
let compilerPromise: ReturnType<typeof createCompiler> | undefined;
const words = Math.ceil(setup.vocabulary.vocabSize / 32);
const controlTokens = bitmaskOf(setup.vocabulary.controlTokenIds);
const controlTokensButNewline = bitmaskOf(setup.vocabulary.controlTokenIdsButNewline);

function bitmaskOf(ids: readonly number[]): Int32Array {
  const mask = new Int32Array(words);
  for (const id of ids) mask[id >> 5] |= 1 << (id & 31);
  return mask;
}

/** What a format must never produce beyond what its grammar forbids: raw control characters in JSON. */
function forbiddenTokens(spec: StructuredOutput): Int32Array | undefined {
  if (spec.type === 'json_schema' || spec.type === 'json_object') return controlTokens;
  // Tool calls: their markup has line breaks; their JSON arguments need no other control character.
  if (spec.type === 'structural_tag') return controlTokensButNewline;
  return undefined;
}
/**
 * A compile or matcher creation failed inside XGrammar (an abort, a trap, a C++ exception): the
 * WebAssembly instance may be in any state, so it compiles nothing more.
 */
let poisoned = false;

async function createCompiler(v: GrammarVocabulary) {
  const info = await xg.TokenizerInfo.createTokenizerInfo(v.encodedVocab, v.vocabType, v.addPrefixSpace, v.vocabSize, v.stopTokenIds);
  return xg.GrammarCompiler.createGrammarCompiler(info, false);
}

function send(m: FromWorker): void {
  port?.postMessage(m);
}

/**
 * XGrammar reports a bad schema or grammar by printing "[FATAL] file:line: message" and aborting.
 * Its print function is bound to console.error when the instance starts, so console.error is
 * replaced before that: during a compile, what it prints is kept as the failure's reason (and
 * stays out of the engine's stderr).
 */
let printed: string[] | undefined;
const printError = console.error;
console.error = (...args: unknown[]) => {
  if (printed) printed.push(args.map(String).join(' '));
  else printError(...args);
};

async function capturingFatal<T>(run: () => Promise<T>): Promise<T> {
  printed = [];
  try {
    return await run();
  } catch (err) {
    const fatal = printed.map((l) => /^\[FATAL\][^:]*:\d+: ?(.*)$/s.exec(l.trim())?.[1]).find((m) => m !== undefined);
    throw new Error(fatal ?? failureReason(err));
  } finally {
    printed = undefined;
  }
}

/** What to tell a client when XGrammar failed without saying why. */
function failureReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (/out of bounds|stack|recursion/i.test(text)) {
    return 'the grammar compiler ran out of memory or stack (a schema nested too deeply?)';
  }
  if (/Aborted/.test(text) || typeof err === 'number') return 'the grammar compiler failed on it';
  return text;
}

async function compile(spec: StructuredOutput, key: string): Promise<CompiledGrammar> {
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  compilerPromise ??= createCompiler(setup.vocabulary);
  const compiler = await compilerPromise;
  const compiled = await capturingFatal(() => {
    switch (spec.type) {
      case 'json_schema':
        // Compact JSON with the separators of JSON.stringify(value, null, 0)'s usual spaced form:
        // free whitespace lets a small model loop on spaces.
        return compiler.compileJSONSchema(spec.schema, false, -1, [', ', ': '], true);
      case 'json_object':
        return compiler.compileJSONSchema('{"type": "object"}', false, -1, [', ', ': '], false);
      case 'regex':
        return compiler.compileStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern: spec.pattern } });
      case 'choice':
        return compiler.compileGrammar(choiceGrammar(spec.choices));
      case 'grammar':
        return compiler.compileGrammar(spec.ebnf);
      case 'structural_tag':
        return compactJsonParts(JSON.parse(spec.tag)).then((tag) => compiler.compileStructuralTag(tag as Record<string, unknown>));
    }
  });
  cache.set(key, compiled);
  while (cache.size > setup.cacheSize) {
    const [oldest, grammar] = cache.entries().next().value as [string, CompiledGrammar];
    cache.delete(oldest);
    grammar.dispose();
  }
  return compiled;
}

/**
 * A structural tag with its JSON-schema parts as grammars of compact JSON (`, ` and `: `, no other
 * whitespace), as the JSON-schema format compiles: XGrammar lets a tag's JSON part hold any
 * whitespace, and a small model then tends to loop on spaces and newlines.
 */
async function compactJsonParts(node: unknown): Promise<unknown> {
  if (Array.isArray(node)) return Promise.all(node.map(compactJsonParts));
  if (node === null || typeof node !== 'object') return node;
  const n = node as Record<string, unknown>;
  if (n.type === 'json_schema' && 'json_schema' in n) {
    const grammar = await xg.Grammar.fromJSONSchema(JSON.stringify(n.json_schema), false, -1, [', ', ': '], true);
    try {
      return { type: 'grammar', grammar: grammar.toString() };
    } finally {
      grammar.dispose();
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(n)) out[key] = await compactJsonParts(value);
  return out;
}

async function writeMask(m: Matcher): Promise<void> {
  const mask = await m.matcher.getNextTokenBitmask();
  m.state.set(mask.subarray(0, m.state.length - STATE_HEADER), STATE_HEADER);
  const forbidden = m.forbidden;
  if (forbidden) for (let w = 0; w < forbidden.length; w++) m.state[STATE_HEADER + w] &= ~forbidden[w];
}

/** Publishes a matcher's new state: its status, then the version the engine waits on. */
function publish(m: Matcher, status: Status): void {
  Atomics.store(m.state, 1, status);
  m.version++;
  Atomics.store(m.state, 0, m.version);
  Atomics.notify(m.state, 0);
}

async function open(msg: Extract<ToWorker, { type: 'open' }>): Promise<void> {
  if (poisoned) {
    send({ type: 'failed', id: msg.id, reason: 'the grammar engine was restarted; retry', retry: true });
    return;
  }
  try {
    const compiled = await compile(msg.spec, msg.key);
    // Without stop tokens (the client ignores end-of-sequence) the matcher ends with the grammar.
    const stops = msg.stopTokenIds.length > 0 ? msg.stopTokenIds : undefined;
    const matcher = await capturingFatal(() => xg.GrammarMatcher.createGrammarMatcher(compiled, stops, stops === undefined));
    const m: Matcher = { matcher, state: new Int32Array(msg.state), version: 0, forbidden: forbiddenTokens(msg.spec) };
    matchers.set(msg.id, m);
    await writeMask(m);
    publish(m, Status.Running);
    send({ type: 'opened', id: msg.id });
  } catch (err) {
    send({ type: 'failed', id: msg.id, reason: err instanceof Error ? err.message : failureReason(err), retry: false });
    poisoned = true;
    send({ type: 'poisoned' });
  }
}

async function accept(msg: Extract<ToWorker, { type: 'accept' }>): Promise<void> {
  const m = matchers.get(msg.id);
  if (!m) return;
  try {
    if (!m.matcher.acceptToken(msg.tokenId)) publish(m, Status.Failed);
    else if (m.matcher.isTerminated()) publish(m, Status.Terminated);
    else {
      await writeMask(m);
      publish(m, Status.Running);
    }
  } catch {
    // An XGrammar error here fails this request only; the engine reads the status.
    publish(m, Status.Failed);
  }
}

function close(id: number): void {
  const m = matchers.get(id);
  if (!m) return;
  matchers.delete(id);
  m.matcher.dispose();
}

const pending: ToWorker[] = [];
let busy = false;

/**
 * Handles messages one at a time, token messages (accept, close) before compiles: the engine may
 * be about to wait for their masks, and it waits only while no compile runs (the control word
 * says whether one does). Before a compile starts, the flag is raised and the messages already
 * sent are taken in, so none the engine sent before seeing the flag waits behind the compile.
 */
async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    while (pending.length > 0) {
      const tokenWork = pending.findIndex((m) => m.type !== 'open');
      const msg = (tokenWork >= 0 ? pending.splice(tokenWork, 1)[0] : pending.shift()) as ToWorker;
      if (msg.type === 'accept') await accept(msg);
      else if (msg.type === 'close') close(msg.id);
      else {
        Atomics.store(control, 0, 1);
        for (let next = receiveMessageOnPort(port as never); next; next = receiveMessageOnPort(port as never)) {
          pending.push(next.message as ToWorker);
        }
        if (pending.some((m) => m.type !== 'open')) {
          pending.unshift(msg);
          continue;
        }
        try {
          await open(msg);
        } finally {
          Atomics.store(control, 0, 0);
        }
      }
    }
  } finally {
    busy = false;
  }
}

port.on('message', (msg: ToWorker) => {
  pending.push(msg);
  void pump();
});
