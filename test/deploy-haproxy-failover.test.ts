// Replicas coming and going behind the shipped HAProxy config (deploy/haproxy/haproxy.cfg), each
// replica the real executable on a tiny model: a replica sent SIGTERM (with the shutdown delay the
// deployment files use) drains while traffic flows, with no request failing; a replica killed
// outright fails only the requests it was serving, cleanly (an error, not a hang), and every
// later request is served by the other; and one hot routing key under concurrent load spills to
// the second replica because of hash-balance-factor, where without it everything would queue on one.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { type CliProcess, waitForHealth } from './helpers/cli-process.ts';
import { waitUntil } from './helpers/full-server.ts';
import {
  type Balancer,
  freePort,
  haproxySkip,
  launchReplica,
  type ReplicaAddress,
  SHIPPED_HAPROXY_CONFIG,
  startHaproxy,
} from './helpers/haproxy.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const skip = haproxySkip();

/** As the deployment files set it: longer than HAProxy's two failed checks a second apart. */
const SHUTDOWN_DELAY_S = 3;

/** One replica process, restartable in place. */
class Replica {
  process: CliProcess | undefined;
  constructor(
    private readonly modelDir: string,
    readonly address: ReplicaAddress,
  ) {}

  async start(): Promise<void> {
    const [host, restPort] = this.address.rest.split(':');
    const [, grpcPort] = this.address.grpc.split(':');
    this.process = await launchReplica(this.modelDir, host, restPort, grpcPort, [
      ...['--shutdown-delay', String(SHUTDOWN_DELAY_S), '--drain-timeout', '30'],
    ]);
    await waitForHealth(this.process.api);
  }

  get running(): boolean {
    return this.process !== undefined && this.process.child.exitCode === null && this.process.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.process) return null;
    if (this.running) this.process.child.kill(signal);
    return this.process.exited;
  }
}

interface Outcome {
  ok: boolean;
  /** What went wrong, for the assertion message. */
  error?: string;
  /** Milliseconds since the load started, when the request was sent and when it ended. */
  sentAt: number;
  endedAt: number;
}

/**
 * A streamed chat completion through the balancer, read to its end: ok when it ends with [DONE].
 * `onFirstChunk` is called when the first bytes of the stream arrive.
 */
async function streamedChat(base: string, body: Record<string, unknown>, t0: number, onFirstChunk?: () => void): Promise<Outcome> {
  const sentAt = performance.now() - t0;
  const done = (ok: boolean, error?: string): Outcome => ({ ok, error, sentAt, endedAt: performance.now() - t0 });
  try {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ max_tokens: 24, temperature: 0, ignore_eos: true, stream: true, ...body }),
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) return done(false, `HTTP ${res.status}: ${await res.text()}`);
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body ?? []) {
      if (text === '') onFirstChunk?.();
      text += decoder.decode(chunk, { stream: true });
    }
    return text.trimEnd().endsWith('data: [DONE]') ? done(true) : done(false, `stream ended without [DONE]: …${text.slice(-200)}`);
  } catch (err) {
    return done(false, `${(err as Error).message} ${(err as Error & { cause?: Error }).cause?.message ?? ''}`);
  }
}

/**
 * `workers` loops sending streamed chats through the balancer until `stop` resolves; every third
 * request has no key (spread), the others one of 16 keys (hashed), so both backends see traffic.
 */
async function loadUntil(base: string, workers: number, stop: Promise<void>, t0: number): Promise<Outcome[]> {
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; !stopped; i++) {
        const keyed = i % 3 !== 2;
        const body = {
          messages: [{ role: 'user', content: `worker ${w} request ${i}` }],
          ...(keyed ? { prompt_cache_key: `key-${(w * 7 + i) % 16}` } : {}),
        };
        outcomes.push(await streamedChat(base, body, t0));
      }
    }),
  );
  return outcomes;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('replicas leaving and failing behind HAProxy', { skip }, () => {
  let modelDir: string;
  const replicas: Replica[] = [];
  let lb: Balancer;

  before(async () => {
    modelDir = writeTinyModel(TEST_MODEL_SPEC);
    for (let i = 0; i < 2; i++) {
      const address = { rest: `127.0.0.1:${await freePort()}`, grpc: `127.0.0.1:${await freePort()}` };
      replicas.push(new Replica(modelDir, address));
    }
    await Promise.all(replicas.map((r) => r.start()));
    lb = await startHaproxy(
      SHIPPED_HAPROXY_CONFIG,
      replicas.map((r) => r.address),
    );
  });
  // Each test may take a replica away; the next starts with both up again.
  afterEach(async () => {
    for (const r of replicas) if (!r.running) await r.start();
    await waitUntil('HAProxy sees both replicas up', async () => {
      const servers = (await lb.stats()).filter((row) => /^r\d$/.test(row.svname));
      return servers.length === 8 && servers.every((row) => row.status === 'UP');
    });
  });
  after(async () => {
    await lb?.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await rm(modelDir, { recursive: true, force: true });
  });

  test('a replica sent SIGTERM leaves the pool and drains while traffic flows: no request fails', async (t) => {
    const t0 = performance.now();
    let stopLoad!: () => void;
    const load = loadUntil(lb.rest, 4, new Promise<void>((r) => (stopLoad = r)), t0);
    await sleep(1500);
    const before = await lb.counts();
    const signalledAt = performance.now() - t0;
    const exited = replicas[0].stop('SIGTERM');
    // Past the delay and the drain, and a while after, so the pool without r1 takes the load.
    const code = await exited;
    const exitedAt = performance.now() - t0;
    await sleep(1500);
    stopLoad();
    const outcomes = await load;
    const counts = await lb.counts();

    const failed = outcomes.filter((o) => !o.ok);
    const during = outcomes.filter((o) => o.sentAt >= signalledAt && o.sentAt <= exitedAt).length;
    const r2Gained = ['rest_affinity', 'rest_spread'].reduce((n, b) => n + (counts.get(`${b}/r2`) ?? 0) - (before.get(`${b}/r2`) ?? 0), 0);
    t.diagnostic(
      `${outcomes.length} streamed requests, ${during} sent between SIGTERM and exit (${Math.round(exitedAt - signalledAt)} ms), ${failed.length} failed; r2 took ${r2Gained} after SIGTERM`,
    );
    assert.equal(code, 0, replicas[0].process?.stderr());
    assert.deepEqual(
      failed.map((o) => o.error),
      [],
    );
    assert.ok(during >= 8, `only ${during} requests were sent while the replica drained`);
    assert.ok(exitedAt - signalledAt >= SHUTDOWN_DELAY_S * 1000, 'the replica kept serving for its shutdown delay');
    // Keys hashed to r1 moved to r2 (consistent hashing moves only those).
    assert.ok(r2Gained > 0);
  });

  test('a replica killed mid-run: its in-flight requests fail cleanly, every later one succeeds through the other', async (t) => {
    // Eight streams at once (least connections puts about half on each replica), long enough to
    // be running when r1 dies.
    const t0 = performance.now();
    let streaming = 0;
    const inFlight = Array.from({ length: 8 }, (_, i) =>
      streamedChat(lb.rest, { messages: [{ role: 'user', content: `long ${i}` }], max_tokens: 1500 }, t0, () => streaming++),
    );
    const grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: lb.grpc }));
    // Six gRPC streams on six keys, which the consistent hash puts on both replicas.
    const grpcStreams = Array.from({ length: 6 }, async (_, i) => {
      try {
        let first = true;
        for await (const _ of grpc.generateStream(
          { prompt: { input: { case: 'text', value: `grpc ${i}` } }, sampling: { maxTokens: 1500, ignoreEos: true } },
          { headers: { 'x-prompt-cache-key': `grpc-key-${i}` } },
        )) {
          if (first) streaming++;
          first = false;
        }
        return { ok: true, endedAt: performance.now() - t0 };
      } catch (err) {
        return { ok: false, error: ConnectError.from(err), endedAt: performance.now() - t0 };
      }
    });
    // Every call has its answer streaming (a request a replica has not begun to answer may be
    // retried elsewhere by HAProxy, which is no failure to test), on both replicas.
    await waitUntil('every call streams', () => streaming === 14);
    await waitUntil('both replicas run REST and gRPC streams', async () => {
      const rows = await lb.stats();
      const busy = (backend: string, server: string) => rows.some((r) => r.pxname === backend && r.svname === server && Number(r.scur) > 0);
      return ['r1', 'r2'].every((s) => busy('rest_spread', s) && busy('grpc_affinity', s));
    });
    assert.equal(await replicas[0].stop('SIGKILL'), null);
    const killedAt = performance.now() - t0;

    // Every request started on r1 ends with an error, at once, rather than hanging; r2's finish.
    const [rest, grpcResults] = await Promise.all([Promise.all(inFlight), Promise.all(grpcStreams)]);
    const restFailed = rest.filter((o) => !o.ok);
    const grpcFailed = grpcResults.filter((o) => !o.ok);
    t.diagnostic(
      `killed at ${Math.round(killedAt)} ms: REST ${restFailed.length}/8 failed (${[...new Set(restFailed.map((o) => o.error))].join('; ')}), gRPC ${grpcFailed.length}/6 failed (${grpcFailed.map((g) => `${Code[g.error?.code ?? 0]}: ${g.error?.rawMessage}`).join('; ')})`,
    );
    assert.ok(restFailed.length > 0 && restFailed.length < 8, 'the killed replica had some of the REST streams, the other the rest');
    assert.ok(grpcFailed.length > 0 && grpcFailed.length < 6, 'the killed replica had some of the gRPC streams, the other the rest');
    for (const o of [...restFailed, ...grpcFailed]) {
      assert.ok(o.endedAt - killedAt < 5000, `a failed call took ${Math.round(o.endedAt - killedAt)} ms to end`);
    }

    // Every later request is served, keyed ones included (those hashed to r1 retry on r2 while
    // HAProxy's checks have not yet marked r1 down, then go to r2 directly).
    const later: Outcome[] = [];
    for (let i = 0; i < 24; i++) {
      later.push(await streamedChat(lb.rest, { messages: [{ role: 'user', content: `after ${i}` }], prompt_cache_key: `key-${i}` }, t0));
    }
    const completions = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        grpc.complete(
          { prompt: { input: { case: 'text', value: `after ${i}` } }, sampling: { maxTokens: 4 } },
          { headers: { 'x-prompt-cache-key': `key-${i}` } },
        ),
      ),
    );
    assert.deepEqual(
      later.filter((o) => !o.ok).map((o) => o.error),
      [],
    );
    assert.equal(completions.length, 8);
  });

  test('one hot key under concurrent load: the balance factor spills it to the second replica', async (t) => {
    /** Eight requests at once on one key: how many each replica took. */
    const hot = async (balancer: Balancer) => {
      const before = await balancer.counts();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          streamedChat(
            balancer.rest,
            { messages: [{ role: 'user', content: `hot ${i}` }], prompt_cache_key: 'hot-key', max_tokens: 200 },
            0,
          ),
        ),
      );
      assert.deepEqual(
        outcomes.filter((o) => !o.ok).map((o) => o.error),
        [],
      );
      const counts = await balancer.counts();
      return ['r1', 'r2'].map((s) => (counts.get(`rest_affinity/${s}`) ?? 0) - (before.get(`rest_affinity/${s}`) ?? 0));
    };
    // The bound (150% of the average in flight) caps the key's replica at 6 of 8, so at least 2
    // go to the other.
    const bounded = await hot(lb);
    // The same config without the bound: the key's replica takes all eight.
    const unbounded = await startHaproxy(
      SHIPPED_HAPROXY_CONFIG.replace(/^\s*hash-balance-factor .*$/gm, ''),
      replicas.map((r) => r.address),
    );
    const unboundedSplit = await hot(unbounded).finally(() => unbounded.close());
    t.diagnostic(`one key, 8 at once: with hash-balance-factor 150 ${bounded.join('/')}, without ${unboundedSplit.join('/')}`);
    assert.deepEqual([...unboundedSplit].sort(), [0, 8], 'without the bound the key stays on one replica');
    assert.ok(Math.max(...bounded) <= 6 && Math.min(...bounded) >= 2, `with the bound: ${bounded.join('/')}`);
  });
});
