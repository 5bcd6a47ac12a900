// The acceptance, end to end through the real executable: a user whose HF_HOME holds a
// model (laid out as huggingface_hub leaves it) starts the server with --model <repo id> offline
// and gets answers, with no download and no request to the hub. Also the CLI's --revision and
// --offline reaching the model source.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BIN, launchCli, waitForHealth } from './helpers/cli-process.ts';
import { startFakeHub, type FakeHub } from './helpers/fake-hub.ts';
import { commitHash, filesOf, repoFolder, writeCachedRepo } from './helpers/hf-cache-fixture.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const run = promisify(execFile);
const repoId = 'test-org/Tiny-Chat';
const commit = commitHash('main');

let root: string;
let home: string;
let hub: FakeHub;
let env: NodeJS.ProcessEnv;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-source-serve-test-'));
  home = join(root, 'hf-home');
  const modelDir = writeTinyModel(TEST_MODEL_SPEC, await mkdtemp(join(root, 'model-')));
  await writeCachedRepo(join(home, 'hub'), repoId, [{ commit, refs: ['main'], files: await filesOf(modelDir) }]);
  await rm(modelDir, { recursive: true });
  // A hub that answers nothing useful and records every request: none may come.
  hub = await startFakeHub({});
  env = { HF_HOME: home, HF_HUB_OFFLINE: '1', HF_ENDPOINT: hub.endpoint, MLX_BATCH_SERVER_CACHE: join(root, 'ours') };
});
after(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});

test('with HF_HOME holding the model, --model <repo id> offline serves it with no download', async () => {
  const server = await launchCli(['--model', repoId, '--port', '0', '--grpc-port', '0', '--log-level', 'info'], env);
  try {
    await waitForHealth(server.api);
    const models = (await (await fetch(`${server.api}/models`)).json()) as { data: { id: string }[] };
    assert.equal(models.data[0].id, repoId);
    const res = await fetch(`${server.api}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: repoId, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0 }),
    });
    assert.equal(res.status, 200);
    const reply = (await res.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
    assert.equal(typeof reply.choices[0].message.content, 'string');
    assert.ok(reply.usage.completion_tokens > 0);
    assert.ok(server.stderr().includes(join(repoFolder(join(home, 'hub'), repoId), 'snapshots', commit)), server.stderr());
    assert.deepEqual(hub.requests, [], 'no request reached the hub');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('--revision and --offline reach the model source: an uncached revision or repo fails at once, saying why', async () => {
  const fail = async (args: string[], extraEnv: NodeJS.ProcessEnv) => {
    const err = await run(process.execPath, [BIN, ...args, '--port', '0', '--grpc-port', '0'], {
      env: { ...process.env, ...extraEnv },
    }).then(
      () => assert.fail('the server started'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    return err.stderr;
  };
  assert.match(
    await fail(['--model', repoId, '--revision', 'v2.0'], env),
    /"test-org\/Tiny-Chat" at revision "v2\.0" is not in the Hugging Face cache/,
  );
  const withoutEnvOffline = { ...env, HF_HUB_OFFLINE: '' };
  assert.match(
    await fail(['--model', 'test-org/Elsewhere', '--offline'], withoutEnvOffline),
    /not in the Hugging Face cache .* offline mode is on/,
  );
  assert.deepEqual(hub.requests, []);
});
