#!/usr/bin/env node
// Compiles src/ to dist/ (the server runs compiled JavaScript, not TypeScript through a loader) and
// copies the files beside the sources the compiled code finds by path: MLX's JIT compiler wrapper;
// then bundles the web playground.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const run = (args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run([join(root, 'scripts', 'gen-mlx-types.mjs')]);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
run([tsc, '-p', join(root, 'tsconfig.build.json')]);
const jit = join(root, 'dist', 'engine', 'mlx-jit');
rmSync(jit, { recursive: true, force: true });
cpSync(join(root, 'src', 'engine', 'mlx-jit'), jit, { recursive: true });
// The web playground (web/playground → dist/playground), served at the REST port's /.
run([join(root, 'scripts', 'build-ui.mjs')]);
