// A client that goes away mid-answer cancels its gRPC calls, and so frees its engine slots. The
// requests here would generate thousands of tokens (seconds of work); the engine's running count
// returning to 0 soon after the disconnect shows they were cancelled rather than finished. A stream
// whose engine process dies gets an error event instead of hanging.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { connectToService, type ServiceConnection } from '../src/adapter-openai/service-connection.ts';
import type { RunningServer } from '../src/cli/serve.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let server: RunningServer;
let full: FullServer;
let openai: OpenAI;
let status: ServiceConnection;

before(async () => {
  full = await startFullServer({ engine: { batchSize: 8 } });
  server = full.server;
  openai = new OpenAI({ baseURL: server.adapter.url, apiKey: 'unused', maxRetries: 0 });
  status = connectToService({ target: server.grpcTarget });
});
after(async () => {
  status.close();
  await full.close();
});

/** Polls GetServerStatus until `done` holds; fails after `polls` tries 20 ms apart (a liveness bound, far below the work's length). */
async function waitForStatus(done: (running: number, waiting: number) => boolean, polls = 150): Promise<void> {
  let last = '';
  for (let i = 0; i < polls; i++) {
    const s = await status.client.getServerStatus({});
    if (done(s.runningRequests, s.waitingRequests)) return;
    last = `running ${s.runningRequests}, waiting ${s.waitingRequests}`;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`the engine never reached the expected state (last: ${last})`);
}

// No max_tokens and ignore_eos: each request runs to the end of the 4096-token context.
const endless = { model: 'default', messages: [{ role: 'user' as const, content: 'Go on forever' }], ignore_eos: true };

test('a streaming client that disconnects frees both slots of its n=2 request', async () => {
  const abort = new AbortController();
  const stream = await openai.chat.completions.create({ ...endless, n: 2, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming, {
    signal: abort.signal,
  });
  const chunks = stream[Symbol.asyncIterator]();
  let content = 0;
  while (content < 4) {
    const next = await chunks.next();
    assert.ok(!next.done);
    if (next.value.choices[0]?.delta.content) content++;
  }
  await waitForStatus((running) => running === 2);
  abort.abort();
  await waitForStatus((running, waiting) => running === 0 && waiting === 0);
});

test('a non-streaming client that disconnects frees its slot', async () => {
  const abort = new AbortController();
  const pending = fetch(`${server.adapter.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(endless),
    signal: abort.signal,
  });
  await waitForStatus((running) => running === 1);
  abort.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  await waitForStatus((running, waiting) => running === 0 && waiting === 0);
});

test('the server keeps answering after clients went away', async () => {
  const r = await openai.chat.completions.create({
    model: 'default',
    messages: [{ role: 'user', content: 'still there?' }],
    max_tokens: 3,
  });
  assert.equal(r.choices.length, 1);
});

test('a stream whose engine process dies ends with an error event; the server recovers', async () => {
  const stream = await openai.chat.completions.create({ ...endless, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next();
  await chunks.next();
  process.kill(server.engine.pid!, 'SIGKILL');
  // The SDK raises the stream's `error` event as an APIError.
  await assert.rejects(
    async () => {
      for (;;) if ((await chunks.next()).done) break;
    },
    (err: unknown) => err instanceof OpenAI.APIError && /engine/.test(err.message),
  );
  // /health reports the restart (503) until the engine is back (200).
  const healthUrl = server.adapter.url.replace(/\/v1$/, '/health');
  let healthy = false;
  for (let i = 0; i < 500 && !healthy; i++) {
    healthy = (await fetch(healthUrl)).status === 200;
    if (!healthy) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(healthy, 'the engine did not come back');
  const r = await openai.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'back?' }], max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});
