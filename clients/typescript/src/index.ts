// @mlx-batch-server/client: a TypeScript client of the mlxserve.v1 gRPC API.
//
//   const client = createGenerationClient('http://localhost:50051');
//   for await (const e of client.generate({ prompt: { messages: [{ role: 'user', content: 'Hi!' }] }, sampling: { maxTokens: 64 } })) {
//     if (e.type === 'delta') process.stdout.write(e.text);
//   }
//
//   const session = client.session();            // many requests on one Generate stream
//   const a = session.generate({ prompt: 'Once upon a time' });
//   const b = session.generate({ prompt: 'The capital of France is' });
//   const [ra, rb] = await Promise.all([a.completion(), b.completion()]);
//   await session.close();
export {
  createGenerationClient,
  GenerationClient,
  type CallOptions,
  type ClientOptions,
  type DetokenizeOptions,
  type TokenizeOptions,
} from './client.ts';
export { Code, GenerationServiceError } from './errors.ts';
export {
  assistantMessage,
  type Completion,
  type DeltaEvent,
  type FinishedEvent,
  type FinishReason,
  type GenerationEvent,
  type StartedEvent,
  type TokenLogprob,
  type TopLogprob,
  type Usage,
} from './events.ts';
export type { ChatInput, ChatMessage, GenerationRequest, PromptInput, SamplingOptions } from './request.ts';
export { parseToolArguments, toolMessage, type Tool, type ToolCall, type ToolChoice } from './tools.ts';
export { GenerationSession, SessionRequest, type SessionOptions } from './session.ts';
export { EngineState, type GetServerStatusResponse as ServerStatus, type ModelInfo } from './proto.ts';
