// Live test of the TypeScript client against a running server (test/helpers/test-server.ts, a
// tiny random-weight model, started as its own process the way the other clients' tests do).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Code, createGenerationClient, GenerationServiceError, type GenerationClient, type GenerationEvent } from '../src/index.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
let serverProcess: ChildProcess;
let client: GenerationClient;
let modelId: string;

before(async () => {
  serverProcess = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/test-server.ts'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: serverProcess.stdout! }), 'line')) as [string];
  const { port, model } = JSON.parse(line) as { port: number; model: string };
  modelId = model;
  client = createGenerationClient(`http://127.0.0.1:${port}`);
});

after(async () => {
  const exited = once(serverProcess, 'exit');
  serverProcess.kill('SIGTERM');
  await exited;
});

const greedy = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

/** Waits until the server runs no request (a cancelled one would otherwise run for seconds). */
async function waitForNoRunningRequests(): Promise<void> {
  const deadline = Date.now() + 3000;
  while ((await client.status()).runningRequests > 0) {
    if (Date.now() > deadline) throw new Error('a request is still running');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('two requests multiplexed on one Generate stream each get their own events', async () => {
  const requestA = { prompt: { tokenIds: [10, 20, 30] }, sampling: greedy(16) };
  const requestB = { prompt: { messages: [{ role: 'user', content: 'Hi!' }] }, sampling: greedy(12) };
  const expectedA = await client.complete(requestA);
  const expectedB = await client.complete(requestB);

  const session = client.session();
  const a = session.generate(requestA);
  const b = session.generate(requestB, { requestId: 'chat' });
  assert.equal(b.id, 'chat');
  assert.equal(session.openRequests, 2);
  const [ra, rb] = await Promise.all([a.completion(), b.completion()]);
  await session.close();

  assert.equal(ra.model, modelId);
  assert.deepEqual(ra.tokenIds, expectedA.tokenIds);
  assert.equal(ra.text, expectedA.text);
  assert.deepEqual(ra.finish, {
    type: 'finished',
    finishReason: 'length',
    stopString: undefined,
    stopTokenId: undefined,
    usage: { promptTokens: 3, completionTokens: 16, cachedTokens: ra.finish.usage.cachedTokens },
  });
  assert.deepEqual(rb.tokenIds, expectedB.tokenIds);
  assert.equal(rb.finish.usage.completionTokens, 12);
  assert.equal(session.openRequests, 0);
});

test('cancel ends a request with finishReason "cancelled" and frees its slot; the session goes on', async () => {
  const session = client.session();
  const long = session.generate({ prompt: 'hello', sampling: { maxTokens: 4000, ignoreEos: true } });
  const events: GenerationEvent[] = [];
  for await (const e of long) {
    events.push(e);
    if (e.type === 'delta') long.cancel();
  }
  const last = events.at(-1);
  assert.equal(last?.type === 'finished' && last.finishReason, 'cancelled');
  assert.ok(last?.type === 'finished' && last.usage.completionTokens < 4000);
  await waitForNoRunningRequests();

  // Leaving the loop early cancels too.
  const abandoned = session.generate({ prompt: 'hello', sampling: { maxTokens: 4000, ignoreEos: true } });
  for await (const e of abandoned) if (e.type === 'delta') break;
  await waitForNoRunningRequests();

  const after = await session.generate({ prompt: 'abc', sampling: greedy(3) }).completion();
  assert.equal(after.tokenIds.length, 3);
  await session.close();
});

test('Tokenize and Detokenize', async () => {
  const t = await client.tokenize('hi', { returnTokenStrings: true });
  assert.deepEqual(t, { tokenIds: [104, 105], tokenStrings: ['h', 'i'] });
  const chat = await client.tokenize({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.tokenIds.length, 21);
  assert.equal(await client.detokenize(chat.tokenIds, { skipSpecialTokens: true }), 'user\nhi\nassistant\n');
});

test('streaming one request, listing models, status and health', async () => {
  const events: GenerationEvent['type'][] = [];
  let text = '';
  for await (const e of client.generate({ prompt: 'abc', sampling: greedy(5) })) {
    events.push(e.type);
    if (e.type === 'delta') text += e.text;
  }
  assert.equal(events[0], 'started');
  assert.equal(events.at(-1), 'finished');
  assert.equal(text, (await client.complete({ prompt: 'abc', sampling: greedy(5) })).text);
  const [model] = await client.listModels();
  assert.equal(model.id, modelId);
  assert.equal(await client.isServing(), true);
  assert.equal((await client.status()).runningRequests, 0);
});

test('failures are GenerationServiceErrors with the status code and the offending field', async () => {
  const isBadTopP = (e: unknown) =>
    e instanceof GenerationServiceError &&
    e.code === Code.InvalidArgument &&
    e.field === 'sampling.top_p' &&
    e.codeName === 'invalid_argument';
  await assert.rejects(client.complete({ prompt: 'a', sampling: { topP: 0 } }), isBadTopP);
  await assert.rejects(client.collect({ prompt: 'a', sampling: { topP: 0 } }), isBadTopP);
  await assert.rejects(
    client.complete({ prompt: 'a', model: 'nope' }),
    (e) => e instanceof GenerationServiceError && e.code === Code.NotFound,
  );

  const session = client.session();
  const bad = session.generate({ prompt: 'a', sampling: { topP: 0 } });
  await assert.rejects(bad.completion(), (e) => isBadTopP(e) && (e as GenerationServiceError).requestId === bad.id);
  const good = session.generate({ prompt: 'a', sampling: greedy(2) });
  assert.throws(
    () => session.generate({ prompt: 'a' }, { requestId: good.id }),
    (e) => e instanceof GenerationServiceError && e.code === Code.AlreadyExists,
  );
  assert.equal((await good.completion()).tokenIds.length, 2, 'one failing request does not end the session');
  await session.close();

  const abort = new AbortController();
  const stream = client.generate({ prompt: 'a', sampling: { maxTokens: 4000, ignoreEos: true } }, { signal: abort.signal });
  await assert.rejects(
    (async () => {
      for await (const e of stream) if (e.type === 'delta') abort.abort();
    })(),
    (e) => e instanceof GenerationServiceError && e.code === Code.Canceled,
  );
  await waitForNoRunningRequests();
});
