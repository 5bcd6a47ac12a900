// The generated-code drift check, the Python and Go clients' live tests and the OpenAI Python SDK
// tests, run as part of the one test command (they need scripts/setup-clients.sh, which `scripts/setup.sh --with-clients` runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { skipUnlessInstalled } from './helpers/required-tool.ts';

function run(script: string, args: string[] = []) {
  const r = spawnSync(script, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10 * 60_000 });
  return { ok: r.status === 0, output: `${r.stdout}\n${r.stderr}`.trim() };
}

const ready = existsSync('.venv/bin/python') && existsSync('.tools/bin/protoc-gen-go');
const skip = skipUnlessInstalled(!ready && 'client toolchains not installed', 'run scripts/setup.sh --with-clients');

test('generated code matches the proto and buf lint passes', { skip }, () => {
  const r = run('scripts/check-generated.sh');
  assert.ok(r.ok, r.output);
});

test('Python and Go clients pass their live tests against a running server', { skip }, () => {
  const r = run('scripts/test-clients.sh');
  assert.ok(r.ok, r.output);
});

test('the official openai Python SDK works against the REST adapter', { skip }, () => {
  const r = run('.venv/bin/python', ['-m', 'pytest', '-q', 'test/python']);
  assert.ok(r.ok, r.output);
});
