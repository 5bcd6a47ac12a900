import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StopStringMatcher } from '../src/text/stop-string-matcher.ts';

interface Run {
  emitted: string;
  stop?: string;
}

/** Feeds the deltas in order, as the engine would, and collects what the matcher lets through. */
function run(stops: string[], deltas: string[], onStep?: (consumed: string, emitted: string, m: StopStringMatcher) => void): Run {
  const m = new StopStringMatcher(stops);
  let emitted = '';
  let consumed = '';
  for (const delta of deltas) {
    const r = m.push(delta);
    consumed += delta;
    emitted += r.text;
    onStep?.(consumed, emitted, m);
    if (r.stopped) return { emitted, stop: r.stop };
  }
  return { emitted: emitted + m.flush() };
}

/**
 * What a complete text should yield: the text before the stop occurrence that is complete first
 * (smallest end; at equal ends, earliest start), or the whole text when no stop occurs.
 */
function expected(stops: string[], textValue: string): Run {
  let best: { start: number; end: number; stop: string } | undefined;
  for (const stop of stops) {
    const start = textValue.indexOf(stop);
    if (start < 0) continue;
    const end = start + stop.length;
    if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
  }
  return best ? { emitted: textValue.slice(0, best.start), stop: best.stop } : { emitted: textValue };
}

/** Splits `s` into deltas at the given cut points. */
function splitAt(s: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
  const parts: string[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(s.slice(prev, p));
    prev = p;
  }
  parts.push(s.slice(prev));
  return parts;
}

describe('StopStringMatcher', () => {
  test('passes text through when there are no stop strings', () => {
    assert.deepEqual(run([], ['Hello', ' world']), { emitted: 'Hello world' });
  });

  test('a stop string inside one delta: the text before it, never the stop itself', () => {
    const m = new StopStringMatcher(['STOP']);
    assert.deepEqual(m.push('abc STOP def'), { stopped: true, text: 'abc ', stop: 'STOP' });
    assert.ok(m.stopped);
    assert.throws(() => m.push('more'), /after a stop string matched/);
  });

  test('a stop string split across deltas is held back, then dropped', () => {
    const m = new StopStringMatcher(['</answer>']);
    assert.deepEqual(m.push('42 </ans'), { stopped: false, text: '42 ' });
    assert.equal(m.pending, '</ans');
    assert.deepEqual(m.push('wer> trailing'), { stopped: true, text: '', stop: '</answer>' });
  });

  test('held-back text is released once it can no longer become a stop string', () => {
    const m = new StopStringMatcher(['\n\nUser:']);
    assert.deepEqual(m.push('line\n'), { stopped: false, text: 'line' });
    assert.deepEqual(m.push('\nUs'), { stopped: false, text: '' });
    assert.deepEqual(m.push('ually'), { stopped: false, text: '\n\nUsually' });
    assert.equal(m.flush(), '');
  });

  test('at the end, held-back text is flushed as ordinary text', () => {
    const m = new StopStringMatcher(['###']);
    assert.deepEqual(m.push('a ##'), { stopped: false, text: 'a ' });
    assert.equal(m.flush(), '##');
  });

  test('of several stop strings, the one complete first wins', () => {
    assert.deepEqual(run(['bc', 'abcd'], ['a', 'b', 'c', 'd']), { emitted: 'a', stop: 'bc' });
    assert.deepEqual(run(['bc', 'abcd'], ['abcd']), { emitted: 'a', stop: 'bc' });
    assert.deepEqual(run(['c', 'abc'], ['abc']), { emitted: '', stop: 'abc' });
    assert.deepEqual(run(['world', 'o'], ['hello world']), { emitted: 'hell', stop: 'o' });
  });

  test('multi-byte characters and empty deltas', () => {
    assert.deepEqual(run(['🎉!'], ['Party ', '', '🎉', '', '!', 'x']), { emitted: 'Party ', stop: '🎉!' });
    assert.deepEqual(run(['你好'], ['说', '你', '们']), { emitted: '说你们' });
  });

  test('empty stop strings are refused', () => {
    assert.throws(() => new StopStringMatcher(['ok', '']), /non-empty/);
  });

  test('property: for any split of a text into deltas, the output is the text before the first stop', () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', ' ', '\n', '🎉', '好');
    const word = (max: number) => fc.array(alphabet, { minLength: 1, maxLength: max }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(fc.array(word(4), { maxLength: 4 }), word(40), fc.array(fc.nat(), { maxLength: 12 }), (stops, textValue, cuts) => {
        const deltas = splitAt(textValue, cuts);
        const want = expected(stops, textValue);
        const got = run(stops, deltas, (consumed, emitted, m) => {
          // What was emitted is always a prefix of the final answer...
          assert.ok(want.emitted.startsWith(emitted));
          if (!m.stopped) {
            // ...and until a stop matches, emitted plus held back is exactly the text so far,
            // which contains no stop string.
            assert.equal(emitted + m.pending, consumed);
            for (const stop of stops) assert.ok(!consumed.includes(stop));
          }
        });
        assert.deepEqual(got, want);
      }),
      { numRuns: 2000 },
    );
  });
});
