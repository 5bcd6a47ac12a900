// Answers a generation request (chat or completions) once its body is read into a plan: opens the
// choices, then either collects them into one JSON answer or streams them as SSE chunks. Anything
// the service refuses is thrown before the first byte, so it becomes a proper HTTP error; a
// failure after the stream has started is sent as an `error` event, which OpenAI's SDKs raise.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ChoiceFormat } from './choice-format.ts';
import { collectChoices, mergeChoiceEvents, openChoices } from './choice-runner.ts';
import type { GenerationPlan } from './generation-plan.ts';
import { errorFromThrown } from './grpc-error.ts';
import { sendJson, SseStream } from './http-io.ts';
import { openAIUsage, type ChoiceUsage } from './usage.ts';
import type { GenerationClient } from './service-connection.ts';

export interface GenerationContext {
  client: GenerationClient;
  res: ServerResponse;
  /** Aborted when the client disconnects; cancels the request's gRPC calls. */
  abort: AbortController;
  /** Metadata for the request's gRPC calls (its request id, so the service logs it). */
  headers: Record<string, string>;
  /** The system_fingerprint of answers from a model. */
  fingerprint(model: string): string;
}

export function responseId(prefix: string): string {
  return prefix + randomUUID().replaceAll('-', '');
}

export async function answerGeneration(ctx: GenerationContext, plan: GenerationPlan, format: ChoiceFormat): Promise<void> {
  const choices = await openChoices(ctx.client, plan, ctx.abort, ctx.headers);
  const model = choices[0].started.model;
  const head = {
    id: responseId(format.idPrefix),
    created: Math.floor(Date.now() / 1000),
    model,
    system_fingerprint: ctx.fingerprint(model),
  };

  if (!plan.stream) {
    const collected = await collectChoices(choices, plan);
    sendJson(ctx.res, 200, {
      id: head.id,
      object: format.object,
      created: head.created,
      model,
      system_fingerprint: head.system_fingerprint,
      choices: format.choices(collected),
      usage: openAIUsage(collected),
    });
    return;
  }

  const sse = new SseStream(ctx.res);
  // With include_usage, OpenAI sends `usage: null` in every chunk and the totals in a last one.
  const chunk = (entries: unknown[], usage: unknown = null) => ({
    id: head.id,
    object: format.chunkObject,
    created: head.created,
    model,
    system_fingerprint: head.system_fingerprint,
    choices: entries,
    ...(plan.includeUsage ? { usage } : {}),
  });
  const usages: (ChoiceUsage & { index: number })[] = [];
  try {
    for (const choice of choices) {
      for (const entry of format.opening(choice)) await sse.send(chunk([entry]));
    }
    for await (const event of mergeChoiceEvents(choices, plan)) {
      if (!sse.isOpen) return;
      if (event.type === 'delta') {
        const entry = format.delta(event);
        if (entry) await sse.send(chunk([entry]));
      } else {
        usages.push({ index: event.index, promptIndex: choices[event.index].promptIndex, usage: event.usage });
        await sse.send(chunk([format.finish(event)]));
      }
    }
    if (plan.includeUsage) {
      usages.sort((a, b) => a.index - b.index);
      await sse.send(chunk([], openAIUsage(usages)));
    }
  } catch (err) {
    if (!sse.isOpen) return;
    await sse.send(errorFromThrown(err, plan.names).toBody());
  }
  await sse.done();
}
