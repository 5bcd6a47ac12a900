// A reply token by token, each token a span that shows its log-probability and the most likely
// alternatives on hover (one floating tip for the whole page).
import type { TokenLogprob } from '../../../src/gen/mlxserve/v1/generation_pb.ts';

const tip = () => document.getElementById('token-tip') as HTMLDivElement;

/** A token's text as the tip shows it: whitespace made visible. */
function visible(token: string): string {
  return JSON.stringify(token).slice(1, -1);
}

function percent(logprob: number): string {
  return `${(Math.exp(logprob) * 100).toFixed(1)}%`;
}

function showTip(span: HTMLElement, lp: TokenLogprob): void {
  const el = tip();
  el.replaceChildren();
  const head = document.createElement('div');
  head.className = 'tip-head';
  head.textContent = `"${visible(lp.token)}"  logprob ${lp.logprob.toFixed(3)} (${percent(lp.logprob)})  id ${lp.tokenId}`;
  el.append(head);
  for (const alt of lp.topLogprobs) {
    const row = document.createElement('div');
    row.className = alt.tokenId === lp.tokenId ? 'tip-alt chosen' : 'tip-alt';
    row.textContent = `${percent(alt.logprob).padStart(6)}  "${visible(alt.token)}"`;
    el.append(row);
  }
  const box = span.getBoundingClientRect();
  el.style.left = `${Math.min(box.left + window.scrollX, window.scrollX + window.innerWidth - 280)}px`;
  el.style.top = `${box.bottom + window.scrollY + 4}px`;
  el.hidden = false;
}

export class TokenView {
  readonly element = document.createElement('div');

  constructor() {
    this.element.className = 'tokens';
    this.element.addEventListener('mouseleave', () => {
      tip().hidden = true;
    });
  }

  add(logprobs: readonly TokenLogprob[]): void {
    for (const lp of logprobs) {
      const span = document.createElement('span');
      span.className = 'token';
      span.textContent = lp.token;
      // Unlikely picks stand out: the lower the probability, the warmer the background.
      span.style.setProperty('--p', Math.exp(lp.logprob).toFixed(3));
      span.dataset.logprob = lp.logprob.toFixed(4);
      span.addEventListener('mouseenter', () => showTip(span, lp));
      this.element.append(span);
    }
  }
}
