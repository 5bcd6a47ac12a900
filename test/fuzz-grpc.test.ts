// Property-based fuzzing of the gRPC service (fast-check) against a real engine on a tiny model:
// random bytes as the body of gRPC and Connect calls (framed and not), messages with extreme
// values in every field (NaN, infinities, the int32 and int64 limits, giant strings and repeated
// fields), strings that are not UTF-8 (written as raw protobuf bytes), and malformed Generate
// streams. Every call ends with a status, never a hang; none with a server-side code (UNKNOWN,
// INTERNAL, UNAVAILABLE, DATA_LOSS); bytes that are not a valid message get INVALID_ARGUMENT; the
// engine process (the same pid) stays up, and a normal request works afterwards. The model's
// context is 128 tokens, so a call that does generate costs little.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import fc from 'fast-check';
import http2 from 'node:http2';
import {
  CompleteRequestSchema,
  DetokenizeRequestSchema,
  GenerateRequestSchema,
  GenerateStreamRequestSchema,
  GenerationService,
  TokenizeRequestSchema,
} from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { DEFAULT_GRPC_MAX_MESSAGE_BYTES } from '../src/service/grpc-server.ts';
import { startTestServer, waitForIdleEngine, type TestServer } from './helpers/test-server.ts';

let server: TestServer;
let client: Client<typeof GenerationService>;
let session: http2.ClientHttp2Session;
let enginePid: number | undefined;

before(async () => {
  server = await startTestServer({ model: { contextLength: 128 }, engine: { batchSize: 8 } });
  client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
  // This client sends messages of several MB: with Node's default 10 MB of session memory, its own
  // session would refuse its next streams (ENHANCE_YOUR_CALM) while such data is still queued.
  session = http2.connect(server.baseUrl, { maxSessionMemory: 64 });
  enginePid = server.engine.pid;
});
after(async () => {
  session.close();
  await server.close();
});

/** Codes that would mean the server failed, not the request. */
const SERVER_FAULTS = new Set([Code.Unknown, Code.Internal, Code.Unavailable, Code.DataLoss, Code.Unimplemented]);
const CALL_TIMEOUT_MS = 20_000;

const METHODS: Record<string, DescMessage> = {
  Complete: CompleteRequestSchema,
  GenerateStream: GenerateStreamRequestSchema,
  Tokenize: TokenizeRequestSchema,
  Detokenize: DetokenizeRequestSchema,
  Generate: GenerateRequestSchema,
};

/** A gRPC length-prefixed message (uncompressed). */
function frame(payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** One raw gRPC call over HTTP/2; resolves with its grpc-status (and message). */
function rawGrpc(method: string, body: Buffer): Promise<{ code: number; message: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': `/mlxserve.v1.GenerationService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status: string | undefined;
    let message = '';
    const timer = setTimeout(() => {
      req.close();
      reject(new Error(`${method} did not end within ${CALL_TIMEOUT_MS} ms`));
    }, CALL_TIMEOUT_MS);
    const take = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined) message = decodeURIComponent(String(headers['grpc-message']));
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      if (status === undefined) reject(new Error(`${method} ended without a grpc-status`));
      else resolve({ code: Number(status), message });
    });
    req.end(body);
  });
}

function decodes(schema: DescMessage, payload: Uint8Array): boolean {
  try {
    fromBinary(schema, payload);
    return true;
  } catch {
    return false;
  }
}

test('random bytes as the message of every method: INVALID_ARGUMENT unless they happen to decode; never a fault', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...Object.keys(METHODS)), fc.uint8Array({ maxLength: 300 }), async (method, payload) => {
      const { code, message } = await rawGrpc(method, frame(payload));
      const where = `${method} ${Buffer.from(payload).toString('hex')}: ${code} ${message}`;
      if (!decodes(METHODS[method], payload)) assert.equal(code, Code.InvalidArgument, where);
      else assert.ok(!SERVER_FAULTS.has(code), where);
    }),
    { numRuns: 800 },
  );
});

test('a body that is not gRPC framing at all: refused with a client error', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...Object.keys(METHODS)), fc.uint8Array({ minLength: 1, maxLength: 100 }), async (method, body) => {
      const { code, message } = await rawGrpc(method, Buffer.from(body));
      assert.ok(!SERVER_FAULTS.has(code), `${method} ${Buffer.from(body).toString('hex')}: ${code} ${message}`);
      assert.notEqual(code, 0, `${method} ${Buffer.from(body).toString('hex')} was accepted`);
    }),
    { numRuns: 300 },
  );
});

/** Protobuf wire bytes: a length-delimited field. */
function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), Buffer.from(bytes)]);
}

test('strings that are not UTF-8 (model, prompt text, chat role and content): INVALID_ARGUMENT', async () => {
  const invalid = fc.oneof(
    fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xc3], [0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]),
    fc.uint8Array({ minLength: 1, maxLength: 30 }).map((b) => [...b, 0xff]),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('model', 'text', 'role', 'content'),
      invalid,
      fc.constantFrom('Complete', 'GenerateStream', 'Tokenize'),
      async (where, bytes, method) => {
        const raw = Uint8Array.from(bytes);
        const message =
          where === 'model'
            ? Buffer.concat([lengthDelimited(1, raw), lengthDelimited(2, lengthDelimited(1, Buffer.from('hi')))])
            : where === 'text'
              ? lengthDelimited(2, lengthDelimited(1, raw))
              : lengthDelimited(
                  2,
                  lengthDelimited(
                    2,
                    lengthDelimited(
                      1,
                      where === 'role'
                        ? Buffer.concat([lengthDelimited(1, raw), lengthDelimited(2, Buffer.from('x'))])
                        : Buffer.concat([lengthDelimited(1, Buffer.from('user')), lengthDelimited(2, raw)]),
                    ),
                  ),
                );
        const { code, message: text } = await rawGrpc(method, frame(message));
        assert.equal(code, Code.InvalidArgument, `${method} ${where} ${Buffer.from(raw).toString('hex')}: ${code} ${text}`);
      },
    ),
    { numRuns: 150 },
  );
});

const int32 = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(-(2 ** 31), 2 ** 31 - 1, -1, 0, 1, 255, 256, 127),
);
const extremeDouble = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 2, 1, 0.5),
);
const extremeFloat = fc.oneof(fc.float(), fc.constantFrom(Number.NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 100, -100));
/** Rarely, a giant one: sizes near what fits a 4 MiB message (building them is the test's main cost). */
const rarely = <T>(usual: fc.Arbitrary<T>, giant: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: usual, weight: 12 }, { arbitrary: giant, weight: 1 });
const anyString = rarely(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom('', ' ', '\u0000', '\ud800', 'default', 'user', 'system', 'assistant'),
  ),
  fc.constantFrom(1000, 100_000, 1_000_000).map((n) => 'y'.repeat(n)),
);
const prompt = fc.oneof(
  fc.record({ input: fc.record({ case: fc.constant('text' as const), value: anyString }) }),
  fc.record({
    input: fc.record({
      case: fc.constant('chat' as const),
      value: fc.record({
        messages: fc.array(fc.record({ role: anyString, content: anyString }), { maxLength: 5 }),
        addGenerationPrompt: fc.option(fc.boolean(), { nil: undefined }),
      }),
    }),
  }),
  fc.record({
    input: fc.record({
      case: fc.constant('tokens' as const),
      value: fc.record({
        ids: rarely(
          fc.array(int32, { maxLength: 20 }),
          fc.constantFrom(128, 1000, 400_000).map((n) => new Array<number>(n).fill(65)),
        ),
      }),
    }),
  }),
  fc.constant({}),
);
const sampling = fc.record(
  {
    temperature: extremeDouble,
    topP: extremeDouble,
    topK: int32,
    minP: extremeDouble,
    seed: fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n, 0n)),
    repetitionPenalty: extremeDouble,
    presencePenalty: extremeDouble,
    frequencyPenalty: extremeDouble,
    logitBias: fc.dictionary(int32.map(String), extremeFloat, { maxKeys: 5 }),
    // Mostly a few tokens: a request that is valid then costs little (the others are refused).
    maxTokens: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 4 }, { arbitrary: int32, weight: 1 }),
    stop: rarely(
      fc.array(anyString, { maxLength: 20 }),
      fc.constantFrom(17, 100_000).map((n) => new Array<string>(n).fill('s')),
    ),
    stopTokenIds: rarely(
      fc.array(int32, { maxLength: 10 }),
      fc.constantFrom(1000, 1_000_000, 5_000_000).map((n) => new Array<number>(n).fill(0)),
    ),
    ignoreEos: fc.boolean(),
    logprobs: fc.boolean(),
    topLogprobs: int32,
  },
  { requiredKeys: ['maxTokens'] },
);
const completeRequest = fc.record({ model: fc.option(anyString, { nil: undefined }), prompt, sampling }, { requiredKeys: ['sampling'] });

test("messages with extreme values in every field: answered or refused as the client's fault; never a fault or a hang", async () => {
  await fc.assert(
    fc.asyncProperty(completeRequest, fc.constantFrom('Complete', 'GenerateStream'), async (init, method) => {
      const message = create(CompleteRequestSchema, init as MessageInitShape<typeof CompleteRequestSchema>);
      const payload = toBinary(CompleteRequestSchema, message);
      const { code, message: text } = await rawGrpc(method, frame(payload));
      assert.ok(
        !SERVER_FAULTS.has(code),
        `${method} ${JSON.stringify(init, (_, v) => (typeof v === 'bigint' ? String(v) : typeof v === 'string' && v.length > 100 ? `${v.slice(0, 100)}…(${v.length})` : v)).slice(0, 1000)}: ${code} ${text}`,
      );
    }),
    { numRuns: 500 },
  );
});

test('a Generate stream of random messages: each bad one refused on its own, the stream ends OK', async () => {
  const startOrCancel = fc.oneof(
    fc.record({
      action: fc.record({
        case: fc.constant('start' as const),
        value: fc.record(
          { requestId: anyString, model: fc.option(anyString, { nil: undefined }), prompt, sampling },
          { requiredKeys: ['requestId', 'sampling'] },
        ),
      }),
    }),
    fc.record({ action: fc.record({ case: fc.constant('cancel' as const), value: fc.record({ requestId: anyString }) }) }),
    fc.constant({}),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(startOrCancel, { minLength: 1, maxLength: 8 }), async (messages) => {
      const payloads = messages.map((m) =>
        toBinary(GenerateRequestSchema, create(GenerateRequestSchema, m as MessageInitShape<typeof GenerateRequestSchema>)),
      );
      const { code, message } = await rawGrpc('Generate', Buffer.concat(payloads.map(frame)));
      // A message over the size limit ends the whole stream; anything else is refused on its own.
      const tooLarge = payloads.some((p) => p.length > DEFAULT_GRPC_MAX_MESSAGE_BYTES);
      assert.equal(code, tooLarge ? Code.ResourceExhausted : 0, `${code} ${message}`);
    }),
    { numRuns: 150 },
  );
});

test('afterwards: the same engine process serves, idle, and a normal request works', async () => {
  await waitForIdleEngine(server.engine, 20_000);
  assert.equal(server.engine.pid, enginePid, 'the engine process never restarted');
  assert.equal(server.engine.restarts, 0);
  const done = await client.complete({ prompt: { input: { case: 'text', value: 'hi' } }, sampling: { maxTokens: 3, ignoreEos: true } });
  assert.equal(done.tokenIds.length, 3);
  // And over Connect's JSON protocol, a body that is not JSON is a client error too.
  const res = await fetch(`${server.baseUrl}/mlxserve.v1.GenerationService/Complete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"prompt": [',
  });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { code: string }).code, 'invalid_argument');
});
