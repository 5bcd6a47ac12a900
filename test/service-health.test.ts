// Health, reflection, the other protocols on the same port, draining, and an engine crash, against
// a real engine on a tiny model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFileRegistry, fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { Health, HealthCheckResponse_ServingStatus as Status } from '../src/gen/grpc/health/v1/health_pb.ts';
import * as reflectionV1 from '../src/gen/grpc/reflection/v1/reflection_pb.ts';
import * as reflectionV1alpha from '../src/gen/grpc/reflection/v1alpha/reflection_pb.ts';
import { ErrorCode, FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import {
  EngineState,
  GenerationService,
  type GenerateRequestSchema,
  type GenerateResponse,
} from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from '../src/service/async-queue.ts';
import { startTestServer, waitForIdleEngine, type TestServer } from './helpers/test-server.ts';

const SERVICE = 'mlxserve.v1.GenerationService';
const GRPCURL = new URL('../.tools/bin/grpcurl', import.meta.url).pathname;
const HEALTH_PROBE = new URL('../.tools/bin/grpc-health-probe', import.meta.url).pathname;
const BUF = new URL('../node_modules/.bin/buf', import.meta.url).pathname;

let server: TestServer;
let client: Client<typeof GenerationService>;
let health: Client<typeof Health>;

before(async () => {
  server = await startTestServer();
  const transport = createGrpcTransport({ baseUrl: server.baseUrl });
  client = createClient(GenerationService, transport);
  health = createClient(Health, transport);
});
after(() => server.close());

const hello = { prompt: { input: { case: 'text' as const, value: 'hello' } } };

async function healthOf(service: string): Promise<Status> {
  return (await health.check({ service })).status;
}

/** Collects a Watch call's statuses until `until` sees the one it waits for. */
async function watchUntil(statuses: AsyncIterator<{ status: Status }>, seen: Status[], until: Status): Promise<void> {
  for (;;) {
    const r = await statuses.next();
    if (r.done) throw new Error('the watch ended');
    seen.push(r.value.status);
    if (r.value.status === until) return;
  }
}

test('health: SERVING for "" and the service once the engine is ready; unknown services are NOT_FOUND', async () => {
  assert.equal(await healthOf(''), Status.SERVING);
  assert.equal(await healthOf(SERVICE), Status.SERVING);
  await assert.rejects(healthOf('no.such.Service'), (e) => ConnectError.from(e).code === Code.NotFound);
  const list = await health.list({});
  assert.deepEqual(Object.keys(list.statuses).sort(), ['', SERVICE]);
  const watch = health.watch({ service: 'no.such.Service' })[Symbol.asyncIterator]();
  assert.equal((await watch.next()).value?.status, Status.SERVICE_UNKNOWN);
  await watch.return?.();
});

test('while the model loads: health NOT_SERVING, status STARTING, generation UNAVAILABLE; then SERVING', async () => {
  const loading = await startTestServer({ whileLoading: true });
  try {
    const transport = createGrpcTransport({ baseUrl: loading.baseUrl });
    const c = createClient(GenerationService, transport);
    const h = createClient(Health, transport);
    const abort = new AbortController();
    const watch = h.watch({ service: SERVICE }, { signal: abort.signal })[Symbol.asyncIterator]();
    const seen: Status[] = [];
    await watchUntil(watch, seen, Status.NOT_SERVING);
    assert.equal((await h.check({ service: '' })).status, Status.NOT_SERVING);
    assert.equal((await c.getServerStatus({})).engineState, EngineState.STARTING);
    for (const call of [() => c.complete(hello), () => c.listModels({}), () => c.tokenize(hello)]) {
      await assert.rejects(call(), (e) => ConnectError.from(e).code === Code.Unavailable);
    }
    await loading.ready;
    await watchUntil(watch, seen, Status.SERVING);
    abort.abort();
    assert.equal((await c.complete({ ...hello, sampling: { maxTokens: 2, ignoreEos: true } })).tokenIds.length, 2);
  } finally {
    await loading.close();
  }
});

test('draining: health NOT_SERVING, new requests UNAVAILABLE, running requests finish', async () => {
  const abort = new AbortController();
  const watch = health.watch({ service: '' }, { signal: abort.signal })[Symbol.asyncIterator]();
  const seen: Status[] = [];
  await watchUntil(watch, seen, Status.SERVING);

  const running = client.generateStream({ ...hello, sampling: { maxTokens: 200, ignoreEos: true } })[Symbol.asyncIterator]();
  assert.equal((await running.next()).value?.event.case, 'started');
  server.server.draining = true;
  await watchUntil(watch, seen, Status.NOT_SERVING);
  assert.equal(await healthOf(SERVICE), Status.NOT_SERVING);
  assert.equal((await client.getServerStatus({})).engineState, EngineState.DRAINING);
  await assert.rejects(client.complete(hello), (e) => ConnectError.from(e).code === Code.Unavailable);

  const drained = server.server.drain(10_000);
  let last: GenerateResponse['event'] | undefined;
  for (let r = await running.next(); !r.done; r = await running.next()) last = r.value.event as GenerateResponse['event'];
  assert.equal(last?.case === 'finished' && last.value.finishReason, FinishReason.LENGTH, 'the running request finished');
  assert.equal(await drained, true);
  assert.equal(server.server.inFlight, 0);

  server.server.draining = false;
  await watchUntil(watch, seen, Status.SERVING);
  assert.deepEqual(seen, [Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
  abort.abort();
  assert.equal((await client.complete({ ...hello, sampling: { maxTokens: 2 } })).tokenIds.length > 0, true);
});

/** Asks one reflection stream each question in turn (both versions share the message shapes). */
async function reflect(
  version: 'v1' | 'v1alpha',
  questions: MessageInitShape<typeof reflectionV1.ServerReflectionRequestSchema>['messageRequest'][],
) {
  const transport = createGrpcTransport({ baseUrl: server.baseUrl });
  const stream = async function* <T>(items: T[]) {
    yield* items;
  };
  const answers = [];
  if (version === 'v1') {
    const c = createClient(reflectionV1.ServerReflection, transport);
    for await (const r of c.serverReflectionInfo(stream(questions.map((q) => ({ messageRequest: q }))))) answers.push(r.messageResponse);
  } else {
    const c = createClient(reflectionV1alpha.ServerReflection, transport);
    const qs = questions.map((q) => ({ messageRequest: q }) as MessageInitShape<typeof reflectionV1alpha.ServerReflectionRequestSchema>);
    for await (const r of c.serverReflectionInfo(stream(qs))) answers.push(r.messageResponse);
  }
  return answers;
}

for (const version of ['v1', 'v1alpha'] as const) {
  test(`reflection ${version}: lists the services and serves complete descriptors by symbol and file`, async () => {
    const [list, bySymbol, byMethod, byFile, byEnumValue, missing] = await reflect(version, [
      { case: 'listServices', value: '' },
      { case: 'fileContainingSymbol', value: SERVICE },
      { case: 'fileContainingSymbol', value: `${SERVICE}.Generate` },
      { case: 'fileByFilename', value: 'grpc/health/v1/health.proto' },
      { case: 'fileContainingSymbol', value: 'mlxserve.v1.FINISH_REASON_STOP' },
      { case: 'fileContainingSymbol', value: 'mlxserve.v1.NoSuchThing' },
    ]);
    assert.equal(list.case, 'listServicesResponse');
    assert.deepEqual(list.value.service.map((s) => s.name).sort(), [
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      SERVICE,
    ]);

    assert.equal(bySymbol.case, 'fileDescriptorResponse');
    const files = bySymbol.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    assert.equal(files[0].name, 'mlxserve/v1/generation_service.proto', 'the defining file comes first');
    // Complete: the files with their imports make a registry in which every type resolves.
    const registry = createFileRegistry(files[0], (name) => files.find((f) => f.name === name));
    const service = registry.getService(SERVICE);
    assert.ok(service);
    assert.deepEqual(service.methods.map((m) => m.name).sort(), [
      'Complete',
      'Detokenize',
      'Generate',
      'GenerateStream',
      'GetServerStatus',
      'ListModels',
      'LoadAdapter',
      'Tokenize',
      'UnloadAdapter',
    ]);
    assert.ok(registry.getMessage('mlxserve.v1.SamplingParams')?.fields.some((f) => f.name === 'top_p'));

    assert.equal(byMethod.case, 'fileDescriptorResponse');
    assert.equal(fromBinary(FileDescriptorProtoSchema, byMethod.value.fileDescriptorProto[0]).name, 'mlxserve/v1/generation_service.proto');
    assert.equal(byFile.case, 'fileDescriptorResponse');
    assert.equal(fromBinary(FileDescriptorProtoSchema, byFile.value.fileDescriptorProto[0]).package, 'grpc.health.v1');
    assert.equal(byEnumValue.case, 'fileDescriptorResponse');
    assert.equal(fromBinary(FileDescriptorProtoSchema, byEnumValue.value.fileDescriptorProto[0]).name, 'mlxserve/v1/generation.proto');
    assert.equal(missing.case, 'errorResponse');
    assert.equal(missing.value.errorCode, Code.NotFound);
  });
}

test('grpcurl works through reflection: list, describe, a chat GenerateStream, a health check', {
  skip: !existsSync(GRPCURL) && 'grpcurl is not installed (scripts/setup-clients.sh)',
}, async () => {
  const run = promisify(execFile);
  const target = `localhost:${server.port}`;
  const grpcurl = async (...args: string[]) => (await run(GRPCURL, ['-plaintext', ...args], { timeout: 20_000 })).stdout;
  const services = (await grpcurl(target, 'list')).trim().split('\n').sort();
  assert.deepEqual(services, [
    'grpc.health.v1.Health',
    'grpc.reflection.v1.ServerReflection',
    'grpc.reflection.v1alpha.ServerReflection',
    SERVICE,
  ]);
  assert.match(await grpcurl(target, 'describe', 'mlxserve.v1.SamplingParams'), /optional double top_p = 2;/);
  const request = JSON.stringify({
    prompt: { chat: { messages: [{ role: 'user', content: 'Hi!' }] } },
    sampling: { max_tokens: 8, temperature: 0 },
  });
  const out = await grpcurl('-d', request, target, `${SERVICE}/GenerateStream`);
  assert.match(out, /"started"/);
  assert.match(out, /"finishReason": "FINISH_REASON_(LENGTH|STOP)"/);
  assert.match(await grpcurl(target, 'grpc.health.v1.Health/Check'), /"status": "SERVING"/);
});

test('buf curl works through reflection', async () => {
  const run = promisify(execFile);
  const url = `http://localhost:${server.port}/${SERVICE}/Tokenize`;
  const data = JSON.stringify({ prompt: { text: 'hi' } });
  for (const protocol of ['grpc', 'connect']) {
    const { stdout } = await run(BUF, ['curl', '--protocol', protocol, '--http2-prior-knowledge', '--data', data, url], {
      timeout: 20_000,
    });
    assert.deepEqual(JSON.parse(stdout).tokenIds, [104, 105], protocol);
  }
});

test('grpc-health-probe sees SERVING', {
  skip: !existsSync(HEALTH_PROBE) && 'grpc-health-probe is not installed (scripts/setup-clients.sh)',
}, async () => {
  // It exits 0 only for SERVING (execFile rejects otherwise) and says so on stderr.
  const probe = (...args: string[]) => promisify(execFile)(HEALTH_PROBE, [`-addr=localhost:${server.port}`, ...args], { timeout: 20_000 });
  assert.match((await probe()).stderr, /status: SERVING/);
  assert.match((await probe(`-service=${SERVICE}`)).stderr, /status: SERVING/);
  await assert.rejects(probe('-service=no.such.Service'), /code = NotFound/);
});

test('the same port serves Connect and gRPC-Web, over HTTP/1.1 and HTTP/2', async () => {
  for (const transport of [
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' }),
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: '2' }),
    createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' }),
  ]) {
    const c = createClient(GenerationService, transport);
    assert.deepEqual((await c.tokenize({ prompt: { input: { case: 'text', value: 'hi' } } })).tokenIds, [104, 105]);
    let deltas = 0;
    for await (const r of c.generateStream({ ...hello, sampling: { maxTokens: 3, ignoreEos: true } }))
      if (r.event.case === 'delta') deltas++;
    assert.ok(deltas > 0);
    await assert.rejects(c.complete({ ...hello, sampling: { topP: 0 } }), (e) => ConnectError.from(e).code === Code.InvalidArgument);
  }
});

test("Connect's JSON is as strict as binary gRPC: an unknown field or invalid UTF-8 is INVALID_ARGUMENT", async () => {
  const tokenize = (body: string | Buffer, type = 'application/json') =>
    fetch(`${server.baseUrl}/mlxserve.v1.GenerationService/Tokenize`, { method: 'POST', headers: { 'content-type': type }, body });
  const ok = await tokenize('{"prompt":{"text":"hi"}}');
  assert.equal(ok.status, 200);
  assert.deepEqual(((await ok.json()) as { tokenIds: number[] }).tokenIds, [104, 105]);
  const refusals: [string, string | Buffer][] = [
    ['unknown field', '{"prompt":{"text":"hi"},"zzz":1}'],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"prompt":{"text":"h'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')])],
  ];
  for (const [what, body] of refusals) {
    const res = await tokenize(body);
    assert.equal(res.status, 400, what);
    assert.equal(((await res.json()) as { code: string }).code, 'invalid_argument', what);
  }
  // Connect's streaming JSON (enveloped messages) is checked the same way.
  const bad = Buffer.concat([Buffer.from('{"prompt":{"text":"'), Buffer.from([0xc3]), Buffer.from('"},"sampling":{"maxTokens":2}}')]);
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), bad]);
  envelope.writeUInt32BE(bad.length, 1);
  const stream = await fetch(`${server.baseUrl}/mlxserve.v1.GenerationService/GenerateStream`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json' },
    body: envelope,
  });
  assert.match(Buffer.from(await stream.arrayBuffer()).toString('latin1'), /invalid_argument/);
});

test('an engine crash ends in-flight requests with UNAVAILABLE; health recovers with the restart', async () => {
  const abort = new AbortController();
  const watch = health.watch({ service: SERVICE }, { signal: abort.signal })[Symbol.asyncIterator]();
  const seen: Status[] = [];
  await watchUntil(watch, seen, Status.SERVING);

  // One request alone, one on a multiplexed stream that must survive the crash.
  const single = client.generateStream({ ...hello, sampling: { maxTokens: 4000, ignoreEos: true } })[Symbol.asyncIterator]();
  const outgoing = new AsyncQueue<MessageInitShape<typeof GenerateRequestSchema>>();
  const multiplexed = client.generate(outgoing)[Symbol.asyncIterator]();
  const startMessage = (requestId: string) => ({
    action: { case: 'start' as const, value: { requestId, ...hello, sampling: { maxTokens: 4000, ignoreEos: true } } },
  });
  outgoing.push(startMessage('m'));
  const nextOf = async (id: string, kind: string) => {
    for (;;) {
      const r = await multiplexed.next();
      assert.ok(!r.done, 'the multiplexed stream stays open');
      if (r.value.requestId === id && r.value.event.case === kind) return r.value.event;
    }
  };
  await nextOf('m', 'delta');
  assert.equal((await single.next()).value?.event.case, 'started');

  const pid = server.engine.pid;
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');

  await assert.rejects(
    (async () => {
      while (!(await single.next()).done);
    })(),
    (e) => ConnectError.from(e).code === Code.Unavailable,
  );
  const failed = await nextOf('m', 'finished');
  assert.equal(failed.case === 'finished' && failed.value.finishReason, FinishReason.ERROR);
  assert.equal(failed.case === 'finished' && failed.value.error?.code, ErrorCode.UNAVAILABLE);
  // While the engine restarts: NOT_SERVING, and new requests are refused.
  await watchUntil(watch, seen, Status.NOT_SERVING);
  const status = (await client.getServerStatus({})).engineState;
  if (status === EngineState.RESTARTING)
    await assert.rejects(client.complete(hello), (e) => ConnectError.from(e).code === Code.Unavailable);
  await watchUntil(watch, seen, Status.SERVING);
  assert.deepEqual(seen, [Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
  assert.notEqual(server.engine.pid, pid);

  // The next requests work, on a new call and on the stream that saw the crash.
  assert.equal((await client.complete({ ...hello, sampling: { maxTokens: 3, ignoreEos: true } })).tokenIds.length, 3);
  outgoing.push({ action: { case: 'start', value: { requestId: 'm', ...hello, sampling: { maxTokens: 3, ignoreEos: true } } } });
  const after = await nextOf('m', 'finished');
  assert.equal(after.case === 'finished' && after.value.finishReason, FinishReason.LENGTH);
  outgoing.close();
  assert.ok((await multiplexed.next()).done, 'half-close ends the stream with OK');
  abort.abort();
  await waitForIdleEngine(server.engine);
});
