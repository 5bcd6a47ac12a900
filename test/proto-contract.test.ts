// The generated TypeScript carries the gRPC contract: Generate messages survive the wire format
// (unset sampling fields stay unset, so the server can apply its defaults), and the service
// descriptors have the expected methods with the right streaming kinds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Health } from '../src/gen/grpc/health/v1/health_pb.ts';
import { ServerReflection as ServerReflectionV1 } from '../src/gen/grpc/reflection/v1/reflection_pb.ts';
import { ServerReflection as ServerReflectionV1alpha } from '../src/gen/grpc/reflection/v1alpha/reflection_pb.ts';
import { FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerateRequestSchema, GenerateResponseSchema, GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';

test('a Generate start request round-trips through binary with presence intact', () => {
  const request = create(GenerateRequestSchema, {
    action: {
      case: 'start',
      value: {
        requestId: 'r1',
        model: 'smollm2-135m',
        prompt: { input: { case: 'chat', value: { messages: [{ role: 'user', content: 'Hi' }] } } },
        sampling: {
          temperature: 0,
          topK: 40,
          seed: -7n,
          logitBias: { 42: -100 },
          maxTokens: 16,
          stop: ['\n\n'],
          stopTokenIds: [2],
          logprobs: true,
          topLogprobs: 5,
        },
      },
    },
  });
  const decoded = fromBinary(GenerateRequestSchema, toBinary(GenerateRequestSchema, request));
  assert.ok(equals(GenerateRequestSchema, decoded, request));
  assert.equal(decoded.action.case, 'start');
  const sampling = decoded.action.value!.sampling!;
  assert.equal(sampling.temperature, 0, 'an explicit 0 must stay present, not become unset');
  assert.equal(sampling.topP, undefined, 'an unset field must stay unset');
  assert.equal(sampling.seed, -7n);
  assert.deepEqual(sampling.logitBias, { 42: -100 });
});

test('a cancel request and a finished event round-trip through binary', () => {
  const cancel = create(GenerateRequestSchema, { action: { case: 'cancel', value: { requestId: 'r1' } } });
  assert.ok(equals(GenerateRequestSchema, fromBinary(GenerateRequestSchema, toBinary(GenerateRequestSchema, cancel)), cancel));

  const finished = create(GenerateResponseSchema, {
    requestId: 'r1',
    event: {
      case: 'finished',
      value: {
        finishReason: FinishReason.STOP,
        stopReason: { case: 'stopTokenId', value: 2 },
        usage: { promptTokens: 12, completionTokens: 3, cachedTokens: 8 },
      },
    },
  });
  const decoded = fromBinary(GenerateResponseSchema, toBinary(GenerateResponseSchema, finished));
  assert.ok(equals(GenerateResponseSchema, decoded, finished));
  assert.equal(decoded.event.case, 'finished');
  assert.deepEqual(decoded.event.value!.stopReason, { case: 'stopTokenId', value: 2 });
});

test('GenerationService has its methods with the right streaming kinds', () => {
  assert.equal(GenerationService.typeName, 'mlxserve.v1.GenerationService');
  const kinds = Object.fromEntries(GenerationService.methods.map((m) => [m.name, m.methodKind]));
  assert.deepEqual(kinds, {
    Generate: 'bidi_streaming',
    GenerateStream: 'server_streaming',
    Complete: 'unary',
    Tokenize: 'unary',
    Detokenize: 'unary',
    ListModels: 'unary',
    GetServerStatus: 'unary',
    LoadAdapter: 'unary',
    UnloadAdapter: 'unary',
  });
});

test('the standard health and reflection services are generated for the server', () => {
  assert.deepEqual(
    Health.methods.map((m) => [m.name, m.methodKind]),
    [
      ['Check', 'unary'],
      ['Watch', 'server_streaming'],
      ['List', 'unary'],
    ],
  );
  for (const service of [ServerReflectionV1, ServerReflectionV1alpha]) {
    assert.deepEqual(
      service.methods.map((m) => [m.name, m.methodKind]),
      [['ServerReflectionInfo', 'bidi_streaming']],
    );
  }
  assert.equal(ServerReflectionV1alpha.typeName, 'grpc.reflection.v1alpha.ServerReflection');
});
