// The one way model-source tests check a refused model: a ModelSourceError with its code, about the
// `model` field, its message matching what the user is told.
import assert from 'node:assert/strict';
import { ModelSourceError } from '../../src/model-source/model-source.ts';

export async function expectModelError(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<ModelSourceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ModelSourceError, `expected ModelSourceError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.field, 'model');
  if (pattern) assert.match(err.message, pattern);
  return err;
}
