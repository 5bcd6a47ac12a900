// The soak script (bench/soak.ts) for a short time against the real executable on a tiny
// random-weight model: every kind of request is sent (streamed and whole, REST and gRPC, cancelled
// and abandoned), none fails unexpectedly, and afterwards the server is idle with no engine slot,
// queue place, request or prefix-cache lock left held, and it shuts down cleanly. No timings are
// checked: the machine may be busy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDuration, parseDuration } from '../bench/soak/duration.ts';
import { KINDS } from '../bench/soak/outcome.ts';
import type { SoakReport } from '../bench/soak/soak-report.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const SOAK = new URL('../bench/soak.ts', import.meta.url).pathname;

let modelDir: string;
let outDir: string;
before(() => {
  modelDir = writeTinyModel(TEST_MODEL_SPEC);
  outDir = mkdtempSync(join(tmpdir(), 'soak-test-'));
});
after(async () => {
  await rm(modelDir, { recursive: true, force: true });
  await rm(outDir, { recursive: true, force: true });
});

test('durations: 30s, 10m, 1h, 1m30s, 500ms, bare seconds; anything else is refused', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('45'), 45_000);
  for (const bad of ['', '10x', 'm', '10 m', '-5s', '1m 30s']) assert.throws(() => parseDuration(bad), RangeError, bad);
  assert.equal(formatDuration(600_000), '10m');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(1500), '1.5s');
});

test('a short soak: every kind of request, no unexpected failure, back to idle with nothing leaked', { timeout: 120_000 }, async () => {
  const out = join(outDir, 'soak');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      SOAK,
      '--spawn',
      '--model',
      modelDir,
      '--clients',
      '32',
      '--duration',
      '20s',
      '--sample-interval',
      '2s',
      '--out',
      out,
      '--quiet',
      '--no-progress',
      '--',
      '--batch-size',
      '8',
      '--kv-cache-bytes',
      '256MiB',
      '--radix-cache-size',
      '64MiB',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `the soak failed:\n${stderr}`);

  const report = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as SoakReport;
  const total = report.counts.find((c) => c.kind === 'total');
  assert.ok(total && total.sent > 0);
  assert.equal(total.failed, 0, JSON.stringify(report.errors));
  assert.equal(total.sent, total.completed + total.cancelled + total.disconnected + total.refused + total.failed);
  const kind = (k: string) => report.counts.find((c) => c.kind === k) as (typeof report.counts)[number];
  for (const k of KINDS) assert.ok(kind(k).sent > 0, `no ${k} request was sent`);
  for (const k of ['openai-stream', 'openai-chat', 'openai-completion', 'grpc-stream', 'grpc-complete', 'grpc-session']) {
    assert.ok(kind(k).completed > 0, `no ${k} request completed`);
  }
  for (const k of ['openai-cancel', 'grpc-cancel', 'grpc-session']) assert.ok(kind(k).cancelled > 0, `no ${k} request was cancelled`);
  for (const k of ['openai-disconnect', 'grpc-disconnect']) assert.ok(kind(k).disconnected > 0, `no ${k} request was abandoned`);

  // Idle afterwards, by the server's own account and by /metrics; and it still answers.
  assert.ok(report.idle.reached, `the server did not become idle: ${JSON.stringify(report.idle)}`);
  const s = report.idle.status;
  assert.ok(s);
  assert.deepEqual([s.running, s.waiting, s.inFlight, s.lockedBytes, s.engineRestarts, s.engineState], [0, 0, 0, 0, 0, 'READY']);
  const failing = report.checks.filter((c) => c.ok === false);
  assert.deepEqual(failing, []);
  assert.ok(report.checks.some((c) => c.what.startsWith('/metrics vllm:num_requests_running') && c.ok === true));
  assert.equal(report.checks.filter((c) => c.what.endsWith('after the soak') && c.ok === true).length, 2);

  // Memory was sampled during the load and once idle, for the server's whole process tree.
  const load = report.memory.samples.filter((m) => m.phase === 'load');
  assert.ok(load.length >= 3, `only ${load.length} memory samples`);
  assert.ok(load.every((m) => m.totalBytes !== null && m.engineBytes !== null && (m.engineBytes as number) > 0));
  assert.ok(report.memory.samples.some((m) => m.phase === 'idle'));
  assert.ok(report.memory.treeRss && report.memory.treeRss.peakBytes >= report.memory.treeRss.startBytes);

  assert.deepEqual(report.shutdown, { code: 0, killed: false });
  assert.equal(report.serverLog?.notJson, 0, JSON.stringify(report.serverLog));
  assert.equal(report.verdict.pass, true, report.verdict.reasons.join('; '));
  const md = readFileSync(`${out}.md`, 'utf8');
  assert.match(md, /\*\*Verdict: PASS\*\*/);
  assert.match(md, /\| \*\*total\*\* \|/);
});
