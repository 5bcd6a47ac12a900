// The built-in prompt set: a task ("Summarize the following notes about tides.") followed by
// seeded pseudo-text. Every prompt is different (no server gets a free prefix-cache hit beyond the
// chat template) yet the set is the same for a given seed.
import type { Rng } from './rng.ts';
import { pick } from './rng.ts';

const TASKS = [
  'Summarize the following notes about {topic}.',
  'Write a short explanation of {topic} for a new student, using the notes below.',
  'List the main points of these notes about {topic}.',
  'Rewrite the following text about {topic} in plain language.',
  'What questions do these notes about {topic} leave open?',
  'Turn these notes about {topic} into a short story.',
  'Explain the key ideas behind {topic}, based on the notes below.',
  'Give three practical tips about {topic} drawn from these notes.',
] as const;

const TOPICS = [
  'ocean tides',
  'bread baking',
  'volcanoes',
  'the history of maps',
  'bicycle repair',
  'honey bees',
  'solar panels',
  'ancient libraries',
  'chess openings',
  'rainforests',
  'train timetables',
  'coral reefs',
  'paper making',
  'mountain weather',
  'city gardens',
  'the moon landing',
  'river deltas',
  'clock making',
  'glaciers',
  'folk music',
] as const;

const WORDS = (
  'the a of and to in is was for on that with as by at from it this be are or an which were have has had not but ' +
  'water light small large early later river stone field winter summer market village morning evening people time ' +
  'work hands tools wood metal glass salt bread fire wind rain snow hill road bridge harbor boat ship island coast ' +
  'north south east west old new long short high low quiet loud bright dark warm cold slow fast careful simple ' +
  'always often sometimes never usually first second third last next during after before between across around ' +
  'makes keeps turns moves holds shows changes grows carries builds finds uses needs follows starts ends leaves ' +
  'record measure notice explain compare repeat observe describe gather prepare travel return remain become ' +
  'season pattern method reason result question answer example surface layer edge center path line circle corner'
).split(' ');

/** One prompt's opening instruction. */
export function syntheticTask(rng: Rng): string {
  return pick(rng, TASKS).replace('{topic}', pick(rng, TOPICS));
}

/** Sentence-shaped pseudo-text of `words` words: cheap to make, realistic to tokenize. */
export function syntheticText(rng: Rng, words: number): string {
  const sentences: string[] = [];
  let left = words;
  while (left > 0) {
    const n = Math.min(left, 6 + Math.floor(rng() * 12));
    const w = Array.from({ length: n }, () => pick(rng, WORDS));
    w[0] = w[0][0].toUpperCase() + w[0].slice(1);
    sentences.push(`${w.join(' ')}.`);
    left -= n;
  }
  return sentences.join(' ');
}
