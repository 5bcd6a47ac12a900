// A full batch for load tests and benchmarks: `count` GenerateStream calls that decode for a long
// time, each past its first token, and kept being read (unread streams would fill the
// connection's HTTP/2 window and hold up every other answer on it).
import type { Client } from '@connectrpc/connect';
import type { GenerationService } from '../../src/gen/mlxserve/v1/generation_service_pb.ts';

export interface DecodingStreams {
  /** Cancels every stream and waits until they have ended. */
  stop(): Promise<void>;
}

export async function startDecodingStreams(
  client: Client<typeof GenerationService>,
  count: number,
  promptFor: (i: number) => number[],
  maxTokens: number,
): Promise<DecodingStreams> {
  const abort = new AbortController();
  const streams = Array.from({ length: count }, (_, i) =>
    client
      .generateStream(
        { prompt: { input: { case: 'tokens', value: { ids: promptFor(i) } } }, sampling: { temperature: 0, maxTokens, ignoreEos: true } },
        { signal: abort.signal },
      )
      [Symbol.asyncIterator](),
  );
  for (const s of streams) {
    for (;;) {
      const { value, done } = await s.next();
      if (done || value?.event.case === 'delta') break;
    }
  }
  const drained = streams.map(async (s) => {
    for (;;) if ((await s.next().catch(() => ({ done: true }))).done) return;
  });
  return {
    async stop() {
      abort.abort();
      await Promise.allSettled(drained);
    },
  };
}
