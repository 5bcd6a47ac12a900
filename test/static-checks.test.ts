// The checks a contributor runs before a commit, run with the tests so CI runs them on every
// change: the TypeScript type check and Biome (lint rules and formatting, biome.json).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = join(import.meta.dirname, '..');
const resolve = createRequire(import.meta.url).resolve;

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, args, { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the sources type-check (tsc --noEmit)', () => {
  const generated = run([join(repo, 'scripts', 'gen-mlx-types.mjs')]);
  assert.equal(generated.status, 0, generated.output);
  const r = run([resolve('typescript/bin/tsc'), '-p', 'tsconfig.typecheck.json']);
  assert.equal(r.status, 0, r.output);
});

test('the web playground type-checks against the DOM (tsc --noEmit)', () => {
  const r = run([resolve('typescript/bin/tsc'), '-p', 'web/playground/tsconfig.json']);
  assert.equal(r.status, 0, r.output);
});

test('Biome finds no lint error and no unformatted file (npm run lint)', () => {
  const r = run([resolve('@biomejs/biome/bin/biome'), 'check', '--error-on-warnings']);
  assert.equal(r.status, 0, r.output);
});
