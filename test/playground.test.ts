// The playground in a real headless browser (Debian's chromium through playwright-core) against
// the whole server on a tiny model: the page calls the gRPC service itself (Connect over
// HTTP/1.1, GenerateStream), streams replies, stops them (and the server cancels the request),
// runs chats side by side at once, shows the prefix cache at work, the server panel, the token
// view, and the 401 message for a wrong API key; no console errors along the way.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import type { Browser, Locator, Page } from 'playwright-core';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { chromiumMissing, launchChromium } from './helpers/browser.ts';
import { type FullServer, startFullServer, waitUntil } from './helpers/full-server.ts';
import { skipUnlessInstalled } from './helpers/required-tool.ts';

/** A generation far longer than any test waits for (the tiny model writes a few hundred tokens a second). */
const LONG = 4000;
/** Shared by two chats: its tokens are computed once, then come from the prefix cache. */
const SYSTEM_PROMPT = `You are a careful assistant. ${'Answer briefly and precisely, citing the figures you use. '.repeat(8)}`;

const skip = skipUnlessInstalled(chromiumMissing(), "run scripts/setup.sh (it installs Debian's chromium) or set CHROMIUM_PATH");

interface ChatOptions {
  maxTokens?: number;
  ignoreEos?: boolean;
  system?: string;
  tokenView?: boolean;
}

/** A fresh page: new chats, no history. */
async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.locator('[data-figure="state"]', { hasText: 'ready' }).waitFor();
}

async function configure(chat: Locator, options: ChatOptions): Promise<void> {
  if (options.maxTokens !== undefined) await chat.locator('[name=max_tokens]').fill(String(options.maxTokens));
  if (options.ignoreEos !== undefined) await chat.locator('[name=ignore_eos]').setChecked(options.ignoreEos);
  if (options.system !== undefined) await chat.locator('.system').fill(options.system);
  if (options.tokenView !== undefined) await chat.locator('[name=token-view]').setChecked(options.tokenView);
}

const lastReply = (chat: Locator) => chat.locator('.message.assistant').last();
const deltasOf = async (chat: Locator) => Number((await lastReply(chat).getAttribute('data-deltas')) ?? 0);
const stat = async (chat: Locator, name: string) => lastReply(chat).locator(`[data-stat="${name}"]`).getAttribute('data-value');

/** Sends `text` in `chat` and waits for the reply to finish. */
async function sendAndFinish(chat: Locator, text: string): Promise<void> {
  await chat.locator('.input').fill(text);
  await chat.locator('.send').click();
  await lastReply(chat).locator('[data-stat="finish"]').waitFor({ timeout: 30_000 });
}

/** Console errors and uncaught exceptions of a page. */
function watchErrors(page: Page, expected: RegExp[] = []): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.some((re) => re.test(m.text()))) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

// A bound on each suite (hooks included): a hang fails with a stack instead of stalling the run.
describe('the playground in a browser', { skip, timeout: 180_000 }, () => {
  let server: FullServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let status: () => Promise<{ running: number; waiting: number }>;

  before(async () => {
    [server, browser] = await Promise.all([startFullServer(), launchChromium()]);
    const client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.grpcBase }));
    status = async () => {
      const s = await client.getServerStatus({});
      return { running: s.runningRequests, waiting: s.waitingRequests };
    };
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    errors = watchErrors(page);
    await page.goto(`${server.restBase}/`);
    await page.locator('[data-figure="state"]', { hasText: 'ready' }).waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a chat streams its reply in increments, with its figures and token log-probabilities', async () => {
    const chat = page.locator('.chat').nth(0);
    await configure(chat, { maxTokens: 300, ignoreEos: true });
    await chat.locator('.input').fill('Hello there');
    await chat.locator('.send').click();
    // The text as it grows: several different lengths before the reply finishes.
    const lengths = new Set<number>();
    const finish = lastReply(chat).locator('[data-stat="finish"]');
    await waitUntil(
      'the reply finishes',
      async () => {
        lengths.add(((await lastReply(chat).locator('.reply-text').textContent()) ?? '').length);
        return (await finish.count()) > 0;
      },
      1500,
    );
    lengths.delete(0);
    assert.ok(lengths.size >= 3, `the text arrived in ${lengths.size} increments`);
    assert.ok((await deltasOf(chat)) >= 3);
    assert.equal(await stat(chat, 'finish'), 'length');
    assert.equal(await stat(chat, 'tokens'), '300');
    assert.ok(Number(await stat(chat, 'prompt')) > 0);
    assert.match((await stat(chat, 'ttft')) ?? '', /^\d+ ms$/);
    assert.ok(Number(await stat(chat, 'tps')) > 0);

    // Token view: one span a token, its log-probability and alternatives on hover.
    await configure(chat, { tokenView: true });
    const tokens = lastReply(chat).locator('.token');
    assert.equal(await tokens.count(), 300);
    await tokens.nth(5).hover();
    const tip = page.locator('#token-tip');
    await tip.waitFor({ state: 'visible' });
    assert.match((await tip.textContent()) ?? '', /logprob -?\d+\.\d{3}/);
    assert.ok((await tip.locator('.tip-alt').count()) >= 1);
    await configure(chat, { tokenView: false });
  });

  test('Stop ends the call mid-stream and the server cancels the request', async () => {
    await reload(page);
    const chat = page.locator('.chat').nth(0);
    await configure(chat, { maxTokens: LONG, ignoreEos: true });
    await chat.locator('.input').fill('Tell me a long story');
    await chat.locator('.send').click();
    await waitUntil('tokens stream in', async () => (await deltasOf(chat)) >= 3, 1500);
    assert.equal((await status()).running, 1);
    await chat.locator('.stop').click();
    await lastReply(chat).locator('.problem[data-kind="stopped"]').waitFor();
    await waitUntil('the engine runs nothing', async () => (await status()).running === 0);
    assert.ok(Number(await stat(chat, 'tokens')) < LONG);
    assert.ok(await chat.locator('.send').isEnabled());
  });

  test('chats side by side stream at once (concurrent calls in one engine batch)', async () => {
    await reload(page);
    const chats = [page.locator('.chat').nth(0), page.locator('.chat').nth(1)];
    for (const [i, chat] of chats.entries()) {
      await configure(chat, { maxTokens: LONG, ignoreEos: true });
      await chat.locator('.input').fill(`Side ${i}`);
    }
    await page.locator('#send-all').click();
    let peak = 0;
    await waitUntil(
      'both chats stream while the engine runs both',
      async () => {
        peak = Math.max(peak, (await status()).running);
        return peak === 2 && (await deltasOf(chats[0])) >= 3 && (await deltasOf(chats[1])) >= 3;
      },
      1500,
    );
    assert.equal(await page.locator('.chat.busy').count(), 2, 'both are still streaming');
    for (const chat of chats) await chat.locator('.stop').click();
    await waitUntil('the engine runs nothing', async () => (await status()).running === 0);
  });

  test('a second chat with the same system prompt gets its tokens from the prefix cache', async () => {
    await reload(page);
    const [first, second] = [page.locator('.chat').nth(0), page.locator('.chat').nth(1)];
    await configure(first, { system: SYSTEM_PROMPT, maxTokens: 4 });
    await configure(second, { system: SYSTEM_PROMPT, maxTokens: 4 });
    await sendAndFinish(first, 'What is two plus two?');
    await sendAndFinish(second, 'Name a prime number.');
    const prompt = Number(await stat(second, 'prompt'));
    const cached = Number(await stat(second, 'cached'));
    assert.ok(prompt > SYSTEM_PROMPT.length / 4, `prompt ${prompt}`);
    assert.ok(cached > 0, `cached ${cached} of ${prompt}`);
  });

  test('the server panel shows the engine figures and a throughput chart', async () => {
    const figure = (name: string) => page.locator(`[data-figure="${name}"]`).textContent();
    assert.equal(await figure('state'), 'ready');
    assert.match((await figure('kv')) ?? '', /\d.* \/ \d/);
    assert.match((await figure('hit-rate')) ?? '', /%/);
    assert.ok(Number(await figure('running')) >= 0);
    await page.locator('#server-panel .uplot canvas').waitFor();
    assert.equal(await page.locator('#banner').isHidden(), true);
  });

  test('no console errors', () => {
    assert.deepEqual(errors, []);
  });
});

describe('the playground against a server with an API key', { skip, timeout: 120_000 }, () => {
  let server: FullServer;
  let browser: Browser;

  before(async () => {
    [server, browser] = await Promise.all([startFullServer({ apiKey: 'sesame' }), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a wrong key gets the 401 message; the right one (kept for the session) works', async () => {
    const page = await browser.newPage();
    // The browser itself logs each refused call; those are the point of this test.
    const errors = watchErrors(page, [/status of 401/]);
    await page.goto(`${server.restBase}/`);
    await page.locator('#banner[data-kind="unauthenticated"]').waitFor();
    await page.locator('#api-key').fill('wrong-key');
    const chat = page.locator('.chat').nth(0);
    await configure(chat, { maxTokens: 8 });
    await chat.locator('.input').fill('Hello');
    await chat.locator('.send').click();
    const problem = lastReply(chat).locator('.problem[data-kind="unauthenticated"]');
    await problem.waitFor();
    assert.match((await problem.textContent()) ?? '', /401 Unauthenticated.*incorrect API key/);
    assert.equal(await chat.locator('.input').inputValue(), 'Hello', 'the message is given back to retry');

    await page.locator('#api-key').fill('sesame');
    await page.reload();
    assert.equal(await page.locator('#api-key').inputValue(), 'sesame', 'kept in sessionStorage');
    await page.locator('[data-figure="state"]', { hasText: 'ready' }).waitFor();
    await sendAndFinish(page.locator('.chat').nth(0), 'Hello');
    assert.equal(await page.locator('#banner').isHidden(), true);
    assert.deepEqual(errors, []);
  });

  test('the server closes at once while a playground tab keeps connections to it', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.restBase}/`);
    await page.locator('#api-key').fill('sesame');
    await page.locator('[data-figure="state"]', { hasText: 'ready' }).waitFor();
    const started = performance.now();
    await server.close();
    // The browser's kept-alive connections stay open for a minute if the server waits for them.
    assert.ok(performance.now() - started < 10_000, `closed in ${Math.round(performance.now() - started)} ms`);
  });
});
