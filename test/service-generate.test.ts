// The multiplexed Generate stream, cancellation and deadlines against a real engine on a tiny
// model. "Frees the slot" is checked on the engine itself: its running count goes back to 0 long
// before the cancelled request (thousands of tokens) could have finished.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import http2 from 'node:http2';
import { ErrorCode, FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import {
  GenerateStreamRequestSchema,
  GenerationService,
  GenerateRequestSchema,
  type GenerateResponse,
} from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from '../src/service/async-queue.ts';
import { startTestServer, waitForIdleEngine, type TestServer } from './helpers/test-server.ts';

// batch 8 + queue 4: a 13th concurrent request is refused with RESOURCE_EXHAUSTED.
const BATCH = 8;
const MAX_QUEUE = 4;
/** Far more than any test waits for: a request that is not cancelled holds its slot for seconds. */
const LONG = 4000;

let server: TestServer;
let client: Client<typeof GenerationService>;

before(async () => {
  server = await startTestServer({ engine: { batchSize: BATCH, maxQueue: MAX_QUEUE } });
  client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
});
after(() => server.close());

type GenerateMessage = MessageInitShape<typeof GenerateRequestSchema>;

const start = (requestId: string, ids: number[], maxTokens: number): GenerateMessage => ({
  action: {
    case: 'start',
    value: { requestId, prompt: { input: { case: 'tokens', value: { ids } } }, sampling: { temperature: 0, maxTokens, ignoreEos: true } },
  },
});
const cancel = (requestId: string): GenerateMessage => ({ action: { case: 'cancel', value: { requestId } } });

/** One Generate call: send messages at will, read responses as they come. */
function openStream(signal?: AbortSignal, timeoutMs?: number) {
  const outgoing = new AsyncQueue<GenerateMessage>();
  const responses = client.generate(outgoing, { signal, timeoutMs })[Symbol.asyncIterator]();
  const received: GenerateResponse[] = [];
  return {
    send: (m: GenerateMessage) => outgoing.push(m),
    halfClose: () => outgoing.close(),
    received,
    /** Reads until `until` holds for a response (returned); throws if the stream ends first. */
    async next(until: (r: GenerateResponse) => boolean = () => true): Promise<GenerateResponse> {
      for (;;) {
        const r = await responses.next();
        if (r.done) throw new Error('the stream ended');
        received.push(r.value);
        if (until(r.value)) return r.value;
      }
    },
    /** Reads to the end of the stream. */
    async rest(): Promise<GenerateResponse[]> {
      for (;;) {
        const r = await responses.next();
        if (r.done) return received;
        received.push(r.value);
      }
    },
  };
}

const eventsOf = (rs: GenerateResponse[], id: string) => rs.filter((r) => r.requestId === id).map((r) => r.event);
const tokensOf = (rs: GenerateResponse[], id: string) => eventsOf(rs, id).flatMap((e) => (e.case === 'delta' ? e.value.tokenIds : []));
const finishedOf = (rs: GenerateResponse[], id: string) => {
  const last = eventsOf(rs, id).at(-1);
  assert.equal(last?.case, 'finished', `request ${id} finished`);
  return last.value;
};
const isFinish = (id: string) => (r: GenerateResponse) => r.requestId === id && (r.event.case === 'finished' || r.event.case === 'error');

async function greedyTokens(ids: number[], maxTokens: number): Promise<number[]> {
  const done = await client.complete({
    prompt: { input: { case: 'tokens', value: { ids } } },
    sampling: { temperature: 0, maxTokens, ignoreEos: true },
  });
  return done.tokenIds;
}

test('two streams multiplex requests under the same ids without mixing their events', async () => {
  const prompts = { a: [10, 11, 12], b: [40, 41, 42, 43, 44] };
  const expected = { a: await greedyTokens(prompts.a, 20), b: await greedyTokens(prompts.b, 15) };
  const s1 = openStream();
  const s2 = openStream();
  // Same ids on both streams; the prompts are swapped between them.
  s1.send(start('a', prompts.a, 20));
  s1.send(start('b', prompts.b, 15));
  s2.send(start('a', prompts.b, 15));
  s2.send(start('b', prompts.a, 20));
  s1.halfClose();
  s2.halfClose();
  const [r1, r2] = await Promise.all([s1.rest(), s2.rest()]);
  assert.deepEqual(tokensOf(r1, 'a'), expected.a);
  assert.deepEqual(tokensOf(r1, 'b'), expected.b);
  assert.deepEqual(tokensOf(r2, 'a'), expected.b);
  assert.deepEqual(tokensOf(r2, 'b'), expected.a);
  for (const rs of [r1, r2]) {
    for (const id of ['a', 'b']) {
      const events = eventsOf(rs, id);
      assert.equal(events[0].case, 'started');
      assert.equal(events.filter((e) => e.case === 'started' || e.case === 'finished').length, 2, 'one started, one finished');
      assert.equal(finishedOf(rs, id).finishReason, FinishReason.LENGTH);
    }
  }
});

test('a duplicate id, a bad request and a message without action are refused alone; the stream goes on', async () => {
  const s = openStream();
  s.send(start('long', [1, 2, 3], LONG));
  await s.next((r) => r.requestId === 'long' && r.event.case === 'delta');
  s.send(start('long', [4, 5], 3));
  const dup = await s.next((r) => r.requestId === 'long' && r.event.case === 'error');
  assert.equal(dup.event.case === 'error' && dup.event.value.code, ErrorCode.ALREADY_EXISTS);

  s.send({
    action: { case: 'start', value: { requestId: 'bad', prompt: { input: { case: 'text', value: 'x' } }, sampling: { topP: 2 } } },
  });
  const bad = await s.next(isFinish('bad'));
  assert.equal(bad.event.case, 'error');
  assert.equal(bad.event.value.code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(bad.event.value.field, 'sampling.top_p');

  s.send({ action: { case: undefined } });
  const empty = await s.next((r) => r.requestId === '' && r.event.case === 'error');
  assert.equal(empty.event.case === 'error' && empty.event.value.field, 'action');

  s.send({ action: { case: 'start', value: { requestId: '', prompt: { input: { case: 'text', value: 'x' } } } } });
  const noId = await s.next((r) => r.requestId === '' && r.event.case === 'error');
  assert.equal(noId.event.case === 'error' && noId.event.value.field, 'request_id');
  s.send({ action: { case: 'start', value: { requestId: 'x'.repeat(257), prompt: { input: { case: 'text', value: 'x' } } } } });
  const longId = await s.next((r) => r.event.case === 'error' && r.event.value.field === 'request_id');
  assert.equal(longId.requestId.length, 257);

  // The first request was never disturbed; a later one on the same stream works.
  s.send(start('after', [7, 8], 4));
  await s.next(isFinish('after'));
  assert.equal(finishedOf(s.received, 'after').finishReason, FinishReason.LENGTH);
  s.send(cancel('long'));
  await s.next(isFinish('long'));
  assert.equal(finishedOf(s.received, 'long').finishReason, FinishReason.CANCELLED);
  // Once finished, its id may be used again.
  s.send(start('long', [9], 2));
  await s.next(isFinish('long'));
  assert.equal(tokensOf(s.received, 'long').length > 0, true);
  s.halfClose();
  await s.rest();
});

test('a cancel message ends the request with CANCELLED and frees its engine slot; others keep running', async () => {
  const s = openStream();
  s.send(start('victim', [1, 2], LONG));
  s.send(start('bystander', [3, 4], 40));
  await s.next((r) => r.requestId === 'victim' && r.event.case === 'delta');
  s.send(cancel('victim'));
  s.send(cancel('no-such-request')); // ignored
  await s.next(isFinish('victim'));
  const f = finishedOf(s.received, 'victim');
  assert.equal(f.finishReason, FinishReason.CANCELLED);
  assert.ok((f.usage?.completionTokens ?? LONG) < LONG);
  s.halfClose();
  await s.rest();
  assert.equal(finishedOf(s.received, 'bystander').finishReason, FinishReason.LENGTH);
  assert.equal(tokensOf(s.received, 'bystander').length, 40);
  await waitForIdleEngine(server.engine);
});

test('a request cancelled right after its start, running or still queued, keeps the documented event order', async () => {
  const s = openStream();
  // A full batch, so that 'queued' waits for a slot when its cancel arrives.
  for (let i = 0; i < BATCH; i++) s.send(start(`busy${i}`, [5 + i, 6], LONG));
  for (let i = 0; i < BATCH; i++) await s.next((r) => r.requestId === `busy${i}` && r.event.case === 'delta');
  s.send(start('queued', [9, 9], 10));
  s.send(cancel('queued'));
  s.send(start('at-once', [7, 7], LONG));
  s.send(cancel('at-once'));
  while (!['queued', 'at-once'].every((id) => s.received.some(isFinish(id)))) await s.next();
  for (const id of ['queued', 'at-once']) {
    const kinds = eventsOf(s.received, id).map((e) => e.case);
    // Either refused before it started (a lone error) or started → deltas → finished.
    if (kinds[0] === 'error') assert.deepEqual(kinds, ['error'], id);
    else {
      assert.equal(kinds[0], 'started', `${id}: ${kinds.join(', ')}`);
      assert.equal(kinds.at(-1), 'finished', id);
      assert.ok(
        kinds.slice(1, -1).every((k) => k === 'delta'),
        id,
      );
      assert.equal(finishedOf(s.received, id).finishReason, FinishReason.CANCELLED);
    }
  }
  for (let i = 0; i < BATCH; i++) s.send(cancel(`busy${i}`));
  s.halfClose();
  await s.rest();
  await waitForIdleEngine(server.engine);
});

test('half-close: the running requests finish, then the stream ends with OK', async () => {
  const s = openStream();
  s.send(start('one', [5, 6], 30));
  s.send(start('two', [7], 25));
  s.halfClose();
  const rs = await s.rest(); // throws if the stream ends with an error status
  assert.equal(tokensOf(rs, 'one').length, 30);
  assert.equal(tokensOf(rs, 'two').length, 25);
});

test('cancelling the call, or dropping the connection, cancels its requests in the engine', async () => {
  const abort = new AbortController();
  const s = openStream(abort.signal);
  s.send(start('a', [1], LONG));
  s.send(start('b', [2], LONG));
  await s.next((r) => r.event.case === 'delta');
  assert.ok((server.engine.stats()?.running ?? 0) > 0);
  abort.abort();
  await assert.rejects(s.rest(), (e) => ConnectError.from(e).code === Code.Canceled);
  await waitForIdleEngine(server.engine);

  // A client that vanishes (its TCP connection closes) mid-stream, with a hand-made gRPC frame.
  const session = http2.connect(server.baseUrl);
  const body = toBinary(
    GenerateStreamRequestSchema,
    create(GenerateStreamRequestSchema, {
      prompt: { input: { case: 'text', value: 'hello' } },
      sampling: { maxTokens: LONG, ignoreEos: true },
    }),
  );
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from(body)]);
  frame.writeUInt32BE(body.length, 1);
  const stream = session.request({
    ':method': 'POST',
    ':path': '/mlxserve.v1.GenerationService/GenerateStream',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.end(frame);
  await new Promise<void>((resolve) => stream.once('data', () => resolve()));
  assert.ok((server.engine.stats()?.running ?? 0) > 0, 'the request runs');
  session.destroy(); // closes the TCP connection without ending the call
  await waitForIdleEngine(server.engine);
});

test('an expired deadline cancels the generation in the engine', async () => {
  const events: string[] = [];
  await assert.rejects(
    (async () => {
      const stream = client.generateStream(
        { prompt: { input: { case: 'text', value: 'hello' } }, sampling: { maxTokens: LONG, ignoreEos: true } },
        { timeoutMs: 300 },
      );
      for await (const r of stream) events.push(r.event.case ?? '');
    })(),
    (e) => ConnectError.from(e).code === Code.DeadlineExceeded,
  );
  assert.equal(events[0], 'started');
  assert.ok(events.includes('delta'), 'it was generating when the deadline expired');
  await waitForIdleEngine(server.engine);

  // The same for every request of a multiplexed stream.
  const s = openStream(undefined, 300);
  s.send(start('a', [1], LONG));
  await assert.rejects(s.rest(), (e) => ConnectError.from(e).code === Code.DeadlineExceeded);
  assert.ok(tokensOf(s.received, 'a').length > 0);
  await waitForIdleEngine(server.engine);
});

/** A gRPC frame of one message. */
function grpcFrame(bytes: Uint8Array): Buffer {
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from(bytes)]);
  frame.writeUInt32BE(bytes.length, 1);
  return frame;
}

/**
 * A call made by hand, with a grpc-timeout header and no deadline of the client's own (a client
 * library's deadline would end the call on its side first and hide the server's status). Resolves
 * with the grpc-status the server ended it with.
 */
async function statusOfRawCall(method: string, message: Uint8Array, timeout: string, halfClose: boolean): Promise<string> {
  const session = http2.connect(server.baseUrl);
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': `/mlxserve.v1.GenerationService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': timeout,
    });
    if (halfClose) stream.end(grpcFrame(message));
    else stream.write(grpcFrame(message));
    stream.resume();
    return await new Promise<string>((resolve) => {
      stream.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
      stream.on('trailers', (t) => resolve(String(t['grpc-status'])));
      stream.on('close', () => resolve('no status'));
    });
  } finally {
    session.destroy();
  }
}

test('an expired grpc-timeout ends every kind of generation call with DEADLINE_EXCEEDED, not OK', async () => {
  const long = { prompt: { input: { case: 'text' as const, value: 'hello' } }, sampling: { maxTokens: LONG, ignoreEos: true } };
  const single = toBinary(GenerateStreamRequestSchema, create(GenerateStreamRequestSchema, long));
  assert.equal(await statusOfRawCall('GenerateStream', single, '300m', true), String(Code.DeadlineExceeded));
  await waitForIdleEngine(server.engine);
  assert.equal(await statusOfRawCall('Complete', single, '300m', true), String(Code.DeadlineExceeded));
  await waitForIdleEngine(server.engine);
  const bidi = toBinary(GenerateRequestSchema, create(GenerateRequestSchema, start('a', [1], LONG)));
  assert.equal(await statusOfRawCall('Generate', bidi, '300m', false), String(Code.DeadlineExceeded));
  await waitForIdleEngine(server.engine);
});

test('a full queue refuses requests with RESOURCE_EXHAUSTED; the admitted ones run', async () => {
  const abort = new AbortController();
  const s = openStream(abort.signal);
  const n = BATCH + MAX_QUEUE + 3;
  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  ids.forEach((id, i) => s.send(start(id, [i + 1], LONG)));
  // At most BATCH run and MAX_QUEUE wait, so at least the rest are refused, each at once (the
  // engine refuses at submission; a queued request starts only when a slot frees up).
  const mustRefuse = n - BATCH - MAX_QUEUE;
  const refused: GenerateResponse[] = [];
  let started = 0;
  while (refused.length < mustRefuse || started === 0) {
    const r = await s.next((x) => x.event.case === 'started' || x.event.case === 'error');
    if (r.event.case === 'error') refused.push(r);
    else started++;
  }
  for (const r of refused) {
    assert.ok(ids.includes(r.requestId));
    assert.equal(r.event.case === 'error' && r.event.value.code, ErrorCode.RESOURCE_EXHAUSTED);
  }
  abort.abort();
  await assert.rejects(s.rest());
  await waitForIdleEngine(server.engine);
});
