// Slow and silent clients cannot hold the server's connections, on either port: headers and whole
// requests must arrive within their timeouts, a connection that never sends a request is closed,
// and connections beyond --max-connections are refused. Streamed responses are not timed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type CliProcess, launchCli, waitForHealth } from './helpers/cli-process.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

let modelDir: string;
let server: CliProcess;
let ports: { name: string; port: number; path: string }[];

before(async () => {
  modelDir = writeTinyModel(TEST_MODEL_SPEC);
  server = await launchCli([
    ...['--model', modelDir, '--port', '0', '--grpc-port', '0', '--log-level', 'warn'],
    ...['--http-headers-timeout', '1', '--http-request-timeout', '2', '--http-idle-timeout', '1', '--max-connections', '4'],
  ]);
  await waitForHealth(server.api);
  ports = [
    { name: 'REST', port: Number(new URL(server.api).port), path: '/v1/chat/completions' },
    {
      name: 'gRPC (HTTP/1.1: Connect, gRPC-Web)',
      port: Number(server.grpc.split(':').at(-1)),
      path: '/mlxserve.v1.GenerationService/Complete',
    },
  ];
});
after(async () => {
  server.child.kill('SIGKILL');
  await rm(modelDir, { recursive: true, force: true });
});

/** Opens a raw connection, writes `text`, and resolves with what the server answered before it closed it. */
async function answerBeforeClose(port: number, text: string, timeoutMs = 15_000): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  if (text) socket.write(text);
  let received = '';
  socket.on('data', (d) => (received += d.toString('latin1')));
  const timer = setTimeout(() => socket.destroy(new Error('the server kept the connection open')), timeoutMs);
  try {
    await once(socket, 'close');
  } finally {
    clearTimeout(timer);
  }
  assert.ok(!socket.errored, `${socket.errored?.message}`);
  return received;
}

test('a connection that never sends a request is closed', async () => {
  for (const { name, port } of ports) assert.equal(await answerBeforeClose(port, ''), '', name);
});

test('headers sent too slowly (slowloris): the connection is closed', async () => {
  for (const { name, port, path } of ports) {
    const answer = await answerBeforeClose(port, `POST ${path} HTTP/1.1\r\nHost: x\r\nX-Slow: `);
    assert.ok(answer === '' || answer.startsWith('HTTP/1.1 408'), `${name}: ${answer}`);
  }
});

test('a body sent too slowly: 408 and the connection is closed', async () => {
  for (const { name, port, path } of ports) {
    const answer = await answerBeforeClose(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mo`,
    );
    assert.match(answer, /^HTTP\/1\.1 408/, name);
  }
});

test('connections beyond --max-connections are closed at once; the ones held stay until their timeout', async () => {
  for (const { name, port } of ports) {
    // Open connections one at a time until one is closed at once: the cap (4) counts every
    // connection to the port, the server's own REST adapter's included on the gRPC port.
    const held: net.Socket[] = [];
    let refusedAt = -1;
    for (let i = 0; i < 6 && refusedAt < 0; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      const closed = once(s, 'close').then(() => true);
      const stillOpen = new Promise<boolean>((r) => setTimeout(() => r(false), 200));
      if (await Promise.race([closed, stillOpen])) refusedAt = i;
      else held.push(s);
    }
    assert.ok(refusedAt === 3 || refusedAt === 4, `${name}: connection ${refusedAt} was the first refused`);
    assert.ok(
      held.every((s) => !s.destroyed),
      `${name}: the held connections were still open`,
    );
    held.forEach((s) => s.destroy());
  }
});

test('a response streamed for longer than every timeout is not cut', async () => {
  await new Promise((r) => setTimeout(r, 500)); // the connections of the test before are gone
  const openai = new OpenAI({ baseURL: server.api, apiKey: 'unused', maxRetries: 0 });
  const started = performance.now();
  let finish: string | null | undefined;
  let usage: OpenAI.CompletionUsage | undefined;
  const stream = await openai.chat.completions.create({
    model: 'default',
    messages: [{ role: 'user', content: 'go on' }],
    max_tokens: 4000,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  } as OpenAI.ChatCompletionCreateParamsStreaming);
  for await (const chunk of stream) {
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
    // Slow reading, so that the stream outlives the 2 s request timeout.
    if (performance.now() - started < 3000) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(performance.now() - started > 2000, 'the stream lasted beyond the request timeout');
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 4000);
});
