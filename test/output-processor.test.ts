// The text of an output: whole characters only. A character whose last bytes were never generated
// (max_tokens ended the output inside it) is dropped from the text, not shown as U+FFFD; stop
// strings still end the text before them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutputProcessor } from '../src/text/output-processor.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { tinyByteLevelMetadata, tinyByteTokenId } from './fixtures/tokenizer/tiny-vocabularies.ts';

const tok = Tokenizer.fromGguf(tinyByteLevelMetadata());
const bytes = (text: string) => [...Buffer.from(text, 'utf8')].map(tinyByteTokenId);

function run(ids: number[], stop: string[] = []): string {
  const out = new OutputProcessor(tok, stop);
  let text = '';
  for (const id of ids) {
    const step = out.push(id);
    text += step.text;
    if (step.stop) return text;
  }
  return text + out.flush();
}

test('an output cut inside its last character ends before that character', () => {
  const smile = bytes('😊');
  assert.equal(run([...smile, ...smile.slice(0, 3)]), '😊');
  assert.equal(run(smile.slice(0, 1)), '');
  const seoul = bytes('ソウル');
  assert.equal(run(seoul.slice(0, -1)), 'ソウ');
  assert.equal(run(seoul), 'ソウル', 'a complete last character stays');
});

test('bytes that can never form a character still show as U+FFFD where they are', () => {
  assert.equal(run([tinyByteTokenId(0xff), ...bytes('a')]), '\uFFFDa');
});

test('with stop strings: the held-back text is released, the cut character dropped', () => {
  assert.equal(run([...bytes('ab'), ...bytes('😊').slice(0, 2)], ['b😊x']), 'ab');
  assert.equal(run(bytes('abc'), ['c']), 'ab');
});
