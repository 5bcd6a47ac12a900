// Requests over an OpenAI-compatible REST API (/v1/chat/completions or /v1/completions) with the
// official OpenAI SDK, streaming or not. Works with this server, vLLM, SGLang, llama.cpp's
// llama-server and mlx_lm.server.
import OpenAI from 'openai';
import { eosLogitBias, type Backend, type GenerationSettings, type SendResult } from './backend.ts';
import type { BenchRequest } from './workload.ts';

/** The API root, "http://host:port/v1", from a URL given with or without the /v1. */
export function openAIBaseUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith('/v1') ? trimmed : `${trimmed}/v1`;
}

/** The first model the server lists, for servers that insist on a model name. */
export async function firstServedModel(url: string, apiKey?: string): Promise<string> {
  const client = new OpenAI({ baseURL: openAIBaseUrl(url), apiKey: apiKey ?? 'none', maxRetries: 0 });
  const page = await client.models.list();
  const first = page.data[0];
  if (!first) throw new Error(`${openAIBaseUrl(url)}/models lists no model; pass --model`);
  return first.id;
}

export class OpenAIBackend implements Backend {
  readonly endpoint = 'openai' as const;
  private readonly client: OpenAI;

  constructor(
    url: string,
    private readonly settings: GenerationSettings & { model: string },
  ) {
    this.client = new OpenAI({
      baseURL: openAIBaseUrl(url),
      apiKey: settings.apiKey ?? 'none',
      maxRetries: 0,
      timeout: settings.timeoutMs,
    });
  }

  /** Fields every request carries; ignore_eos and logit_bias are sent only when used (some servers refuse unknown fields). */
  private common(maxTokens: number): Record<string, unknown> {
    const s = this.settings;
    const bias = eosLogitBias(s);
    return {
      model: s.model,
      max_tokens: maxTokens,
      temperature: s.temperature,
      ...(s.eos === 'ignore' ? { ignore_eos: true } : {}),
      ...(bias ? { logit_bias: bias } : {}),
    };
  }

  async send(request: BenchRequest, onTokens: (n: number) => void): Promise<SendResult> {
    const body = request.body;
    const params = {
      ...this.common(request.maxTokens),
      ...(body.kind === 'chat' ? { messages: body.messages } : { prompt: body.text }),
      ...(this.settings.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    const api = body.kind === 'chat' ? this.client.chat.completions : this.client.completions;
    // The SDK's types do not know the extension fields (ignore_eos); the request body is built above.
    const create = api.create.bind(api) as unknown as (p: Record<string, unknown>) => Promise<unknown>;
    if (!this.settings.stream) {
      const r = (await create(params)) as { usage?: OpenAI.CompletionUsage; choices: Array<{ finish_reason?: string | null }> };
      const outputTokens = r.usage?.completion_tokens ?? 0;
      onTokens(outputTokens);
      return { promptTokens: r.usage?.prompt_tokens, outputTokens, finishReason: r.choices[0]?.finish_reason ?? undefined };
    }
    const stream = (await create(params)) as AsyncIterable<{
      usage?: OpenAI.CompletionUsage | null;
      choices: Array<{ delta?: { content?: string | null }; text?: string; finish_reason?: string | null }>;
    }>;
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    let finishReason: string | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const text = choice?.delta?.content ?? choice?.text ?? '';
      if (text !== '') {
        chunks++;
        onTokens(1);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    return { promptTokens: usage?.prompt_tokens, outputTokens: usage?.completion_tokens ?? chunks, finishReason };
  }

  async close(): Promise<void> {}
}
