// Takes the README's screenshots of the web playground (docs/images/playground*.png): the whole
// server on the default model, two chats sent at once, then the token view with a token's
// log-probabilities. Uses the browser tests' Chromium (CHROMIUM_PATH or /usr/bin/chromium).
// `node --import tsx scripts/screenshots.ts` (after `node scripts/build.mjs`).
import { join } from 'node:path';
import { launchChromium } from '../test/helpers/browser.ts';
import { startDefaultModelServer } from '../test/helpers/full-server.ts';

const images = join(import.meta.dirname, '..', 'docs', 'images');
const SYSTEM = 'You are a concise assistant. Answer in two or three sentences.';
const QUESTIONS = ['What is continuous batching in LLM serving?', 'Why does a prefix cache speed up chats that share a system prompt?'];

const server = await startDefaultModelServer();
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 640 }, deviceScaleFactor: 1 });
  await page.goto(server.adapter.url.replace(/\/v1$/, '/'));
  await page.locator('[data-figure="state"]', { hasText: 'ready' }).waitFor();
  const chats = [page.locator('.chat').nth(0), page.locator('.chat').nth(1)];
  for (const [i, chat] of chats.entries()) {
    await chat.locator('.system').fill(SYSTEM);
    await chat.locator('[name=temperature]').fill('0.7');
    await chat.locator('[name=seed]').fill(String(i + 1));
    await chat.locator('[name=max_tokens]').fill('90');
    await chat.locator('.input').fill(QUESTIONS[i]);
  }
  await page.locator('#send-all').click();
  for (const chat of chats) await chat.locator('[data-stat="finish"]').waitFor({ timeout: 120_000 });
  // Two more polls, so the chart shows the run.
  await page.waitForTimeout(2500);
  await page.screenshot({ path: join(images, 'playground.png') });

  await chats[0].locator('[name=token-view]').check();
  await chats[0].locator('.token').nth(12).hover();
  await page.locator('#token-tip').waitFor({ state: 'visible' });
  const [chat, tip] = [await chats[0].boundingBox(), await page.locator('#token-tip').boundingBox()];
  if (chat && tip) {
    const right = Math.max(chat.x + chat.width, tip.x + tip.width) + 8;
    const bottom = Math.max(chat.y + chat.height, tip.y + tip.height) + 8;
    await page.screenshot({
      path: join(images, 'playground-tokens.png'),
      clip: { x: chat.x - 8, y: chat.y - 8, width: right - chat.x + 8, height: bottom - chat.y + 8 },
    });
  }
  console.log('wrote docs/images/playground.png and docs/images/playground-tokens.png');
} finally {
  await browser.close();
  await server.close();
}
