// One chat: its system prompt and sampling parameters, the conversation, and each reply streamed
// by one GenerateStream call with its figures (time to first token, tokens/s, prompt and cached
// prompt tokens) and a token view with log-probabilities. Stop aborts the call; the server sees
// the call end and cancels the request in the engine.
import { ConnectError } from '@connectrpc/connect';
import { FinishReason } from '../../../src/gen/mlxserve/v1/generation_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { SamplingParamsSchema } from '../../../src/gen/mlxserve/v1/sampling_pb.ts';
import { describeCallError } from './call-errors.ts';
import { el } from './dom.ts';
import type { GenerationClient } from './service-client.ts';
import { TokenView } from './token-view.ts';

/** Alternatives shown per token in the token view. */
const TOP_LOGPROBS = 5;

interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

type Sampling = MessageInitShape<typeof SamplingParamsSchema>;

function numberField(label: string, name: string, attrs: Record<string, string>): HTMLLabelElement {
  const input = el('input', { type: 'number', name, ...attrs });
  return el('label', { className: 'param' }, label, input);
}

/** A reply being streamed: its text, its tokens, its figures. */
class Reply {
  readonly element: HTMLElement;
  private readonly text = el('div', { className: 'reply-text' });
  private readonly tokens = new TokenView();
  private readonly stats = el('div', { className: 'reply-stats' });
  private readonly problem = el('div', { className: 'problem', hidden: true });
  content = '';
  deltas = 0;

  constructor() {
    this.element = el('div', { className: 'message assistant' }, this.text, this.tokens.element, this.stats, this.problem);
    this.element.dataset.deltas = '0';
  }

  addDelta(text: string, logprobs: Parameters<TokenView['add']>[0]): void {
    this.content += text;
    this.text.textContent = this.content;
    this.tokens.add(logprobs);
    this.deltas++;
    this.element.dataset.deltas = String(this.deltas);
  }

  stat(name: string, label: string, value: string): void {
    let item = this.stats.querySelector<HTMLElement>(`[data-stat="${name}"]`);
    if (!item) {
      item = el('span', { className: 'stat' });
      item.dataset.stat = name;
      this.stats.append(item);
    }
    item.dataset.value = value;
    item.textContent = `${label} ${value}`;
  }

  fail(kind: string, message: string): void {
    this.problem.hidden = false;
    this.problem.dataset.kind = kind;
    this.problem.textContent = message;
    this.element.classList.add(`ended-${kind}`);
  }
}

export class ChatPanel {
  readonly element: HTMLElement;
  private readonly system = el('textarea', { className: 'system', rows: 3, placeholder: 'System prompt (optional)' });
  private readonly params = el('div', { className: 'params' });
  private readonly tokenToggle = el('input', { type: 'checkbox', name: 'token-view' });
  private readonly messages = el('div', { className: 'messages' });
  private readonly input = el('textarea', { className: 'input', rows: 2, placeholder: 'Message (Ctrl+Enter sends)' });
  private readonly sendButton = el('button', { type: 'button', className: 'send' }, 'Send');
  private readonly stopButton = el('button', { type: 'button', className: 'stop', disabled: true }, 'Stop');
  private readonly history: Turn[] = [];
  private abort: AbortController | undefined;

  constructor(
    private readonly client: GenerationClient,
    private readonly serviceUrl: string,
    title: string,
    onClose: (panel: ChatPanel) => void,
  ) {
    this.params.append(
      numberField('temperature', 'temperature', { min: '0', max: '2', step: '0.1', placeholder: 'model default' }),
      numberField('top_p', 'top_p', { min: '0', max: '1', step: '0.05', placeholder: '1' }),
      numberField('top_k', 'top_k', { min: '0', step: '1', placeholder: '0 (off)' }),
      numberField('max tokens', 'max_tokens', { min: '1', step: '1', value: '256' }),
      numberField('seed', 'seed', { step: '1', placeholder: 'random' }),
      el('label', { className: 'param' }, 'stop (one per line)', el('textarea', { name: 'stop', rows: 1 })),
      el('label', { className: 'param check' }, el('input', { type: 'checkbox', name: 'ignore_eos' }), 'ignore EOS'),
      el('label', { className: 'param check' }, this.tokenToggle, 'token view'),
    );
    this.tokenToggle.addEventListener('change', () => this.element.classList.toggle('show-tokens', this.tokenToggle.checked));
    const close = el('button', { type: 'button', className: 'close', title: 'Close this chat' }, '×');
    close.addEventListener('click', () => {
      this.stop();
      onClose(this);
    });
    const settings = el(
      'details',
      { className: 'settings', open: true },
      el('summary', {}, 'System prompt & parameters'),
      this.system,
      this.params,
    );
    this.element = el(
      'section',
      { className: 'chat' },
      el('div', { className: 'chat-head' }, el('h2', {}, title), close),
      settings,
      this.messages,
      el('div', { className: 'composer' }, this.input, el('div', { className: 'buttons' }, this.sendButton, this.stopButton)),
    );
    this.sendButton.addEventListener('click', () => void this.send());
    this.stopButton.addEventListener('click', () => this.stop());
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void this.send();
    });
  }

  get busy(): boolean {
    return this.abort !== undefined;
  }

  stop(): void {
    this.abort?.abort();
  }

  private sampling(): Sampling {
    const value = (name: string) => (this.params.querySelector(`[name="${name}"]`) as HTMLInputElement).value.trim();
    const s: Sampling = { logprobs: true, topLogprobs: TOP_LOGPROBS };
    if (value('temperature') !== '') s.temperature = Number(value('temperature'));
    if (value('top_p') !== '') s.topP = Number(value('top_p'));
    if (value('top_k') !== '') s.topK = Number(value('top_k'));
    if (value('max_tokens') !== '') s.maxTokens = Number(value('max_tokens'));
    if (value('seed') !== '') s.seed = BigInt(value('seed'));
    const stop = value('stop')
      .split('\n')
      .filter((line) => line !== '');
    if (stop.length > 0) s.stop = stop;
    if ((this.params.querySelector('[name="ignore_eos"]') as HTMLInputElement).checked) s.ignoreEos = true;
    return s;
  }

  async send(): Promise<void> {
    const text = this.input.value.trim();
    if (text === '' || this.busy) return;
    const system = this.system.value.trim();
    const turn: Turn = { role: 'user', content: text };
    const messages = [...(system === '' ? [] : [{ role: 'system', content: system }]), ...this.history, turn];
    this.messages.append(el('div', { className: 'message user' }, text));
    const reply = new Reply();
    this.messages.append(reply.element);
    this.input.value = '';
    const abort = new AbortController();
    this.abort = abort;
    this.setBusy(true);
    const sentAt = performance.now();
    let firstAt: number | undefined;
    let generated = 0;
    let finished = false;
    const rate = () => (firstAt !== undefined && generated > 1 ? (generated - 1) / ((performance.now() - firstAt) / 1000) : undefined);
    try {
      let sampling: Sampling;
      try {
        sampling = this.sampling();
      } catch {
        throw new Error('the seed must be an integer');
      }
      const call = this.client.generateStream(
        { prompt: { input: { case: 'chat', value: { messages } } }, sampling },
        { signal: abort.signal },
      );
      for await (const res of call) {
        const event = res.event;
        if (event.case === 'started') {
          reply.stat('prompt', 'prompt', String(event.value.promptTokens));
          reply.stat('cached', 'cached', String(event.value.cachedTokens));
        } else if (event.case === 'delta') {
          if (firstAt === undefined && event.value.tokenIds.length > 0) {
            firstAt = performance.now();
            reply.stat('ttft', 'TTFT', `${Math.round(firstAt - sentAt)} ms`);
          }
          generated += event.value.tokenIds.length;
          reply.addDelta(event.value.text, event.value.logprobs);
          const r = rate();
          if (r !== undefined) reply.stat('tps', 'tok/s', r.toFixed(1));
        } else if (event.case === 'finished') {
          finished = true;
          const f = event.value;
          if (f.usage) {
            reply.stat('prompt', 'prompt', String(f.usage.promptTokens));
            reply.stat('cached', 'cached', String(f.usage.cachedTokens));
            reply.stat('tokens', 'tokens', String(f.usage.completionTokens));
          }
          reply.stat('finish', 'finish', FinishReason[f.finishReason]?.toLowerCase() ?? String(f.finishReason));
          if (f.error) {
            const problem = describeCallError(new ConnectError(f.error.message, f.error.code as number), this.serviceUrl);
            reply.fail(problem.kind, problem.message);
          }
        }
      }
      if (finished) this.history.push(turn, { role: 'assistant', content: reply.content });
    } catch (err) {
      const problem = err instanceof ConnectError || abort.signal.aborted ? describeCallError(err, this.serviceUrl) : undefined;
      reply.fail(problem?.kind ?? 'error', problem?.message ?? (err as Error).message);
      if (problem?.kind === 'stopped') reply.stat('tokens', 'tokens', String(generated));
      // Not sent: give the message back to edit or retry.
      if (reply.content === '' && problem?.kind !== 'stopped') this.input.value = text;
    } finally {
      const r = rate();
      if (r !== undefined) reply.stat('tps', 'tok/s', r.toFixed(1));
      this.abort = undefined;
      this.setBusy(false);
    }
  }

  private setBusy(busy: boolean): void {
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
    this.element.classList.toggle('busy', busy);
  }
}
