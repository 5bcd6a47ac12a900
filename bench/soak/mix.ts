// The request mix: each client picks its next kind of request at random by weight, and this sends it.
import type { GrpcRequests } from './grpc-requests.ts';
import type { RestRequests } from './openai-requests.ts';
import { KINDS, type Kind, type Outcome } from './outcome.ts';
import type { PromptMix } from './prompts.ts';
import type { Rng } from '../client/rng.ts';

/** Relative weights: about half the requests run to their end, the rest are cancelled or abandoned. */
export const DEFAULT_WEIGHTS: Record<Kind, number> = {
  'openai-stream': 14,
  'openai-chat': 8,
  'openai-completion': 8,
  'openai-cancel': 10,
  'openai-disconnect': 10,
  'grpc-stream': 14,
  'grpc-complete': 8,
  'grpc-session': 8,
  'grpc-cancel': 10,
  'grpc-disconnect': 10,
};

export function pickKind(rng: Rng, weights: Record<Kind, number>): Kind {
  const total = KINDS.reduce((s, k) => s + weights[k], 0);
  let x = rng() * total;
  for (const k of KINDS) {
    x -= weights[k];
    if (x < 0) return k;
  }
  return KINDS[KINDS.length - 1];
}

/** Sends one request (a session: two or three) of a kind, with prompts and cut points from `prompts`. */
export async function sendKind(kind: Kind, rest: RestRequests, grpc: GrpcRequests, prompts: PromptMix, rng: Rng): Promise<Outcome[]> {
  switch (kind) {
    case 'openai-stream':
      return [await rest.complete(kind, prompts.request(prompts.chat()), true)];
    case 'openai-chat':
      return [await rest.complete(kind, prompts.request(prompts.chat()), false)];
    case 'openai-completion':
      return [await rest.complete(kind, prompts.request(prompts.text()), false)];
    case 'openai-cancel':
      return [await rest.cancel(prompts.cutRequest(prompts.chat()), prompts.cutPoint())];
    case 'openai-disconnect': {
      const stream = rng() < 0.6;
      return [await rest.disconnect(prompts.cutRequest(prompts.chat()), stream ? prompts.cutPoint() : prompts.cutPoint(true), stream)];
    }
    case 'grpc-stream':
      return [await grpc.complete(kind, prompts.request(rng() < 0.5 ? prompts.chat() : prompts.text()), true)];
    case 'grpc-complete':
      return [await grpc.complete(kind, prompts.request(rng() < 0.5 ? prompts.chat() : prompts.text()), false)];
    case 'grpc-session': {
      const n = rng() < 0.5 ? 2 : 3;
      const cancelIndex = Math.floor(rng() * n);
      const requests = Array.from({ length: n }, (_, i) =>
        i === cancelIndex ? prompts.cutRequest(prompts.chat()) : prompts.request(prompts.chat()),
      );
      return grpc.session(requests, cancelIndex, prompts.cutPoint());
    }
    case 'grpc-cancel':
      return [await grpc.cancel(prompts.cutRequest(prompts.chat()), prompts.cutPoint())];
    case 'grpc-disconnect':
      return [await grpc.disconnect(prompts.cutRequest(prompts.chat()), prompts.cutPoint())];
  }
}
