#!/usr/bin/env node
// Builds the web playground (web/playground) with esbuild into dist/playground: the bundles under
// assets/ with content hashes in their names (served as immutable), and index.html pointing at
// them. Everything the page needs is in the bundles (connect-web, the generated gRPC code, uPlot),
// so it works offline. About a second; run by scripts/build.mjs.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import * as esbuild from 'esbuild';

const root = join(import.meta.dirname, '..');
const source = join(root, 'web', 'playground');
const out = join(root, 'dist', 'playground');
const assets = join(out, 'assets');

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const result = await esbuild.build({
  entryPoints: { main: join(source, 'src', 'main.ts'), style: join(source, 'src', 'style.css') },
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  // Browsers with BigInt (int64 fields) and fetch response streams (server-streaming calls).
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: root,
});

/** The output file built from an entry point, as a URL path from the page. */
const outputOf = (entry) => {
  const [path] = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint && basename(o.entryPoint) === entry) ?? [];
  if (!path) throw new Error(`build-ui: no output for ${entry}`);
  return `/${relative(out, join(root, path)).split('\\').join('/')}`;
};
const html = readFileSync(join(source, 'index.html'), 'utf8')
  .replace('%MAIN_JS%', outputOf('main.ts'))
  .replace('%STYLE_CSS%', outputOf('style.css'));
writeFileSync(join(out, 'index.html'), html);
