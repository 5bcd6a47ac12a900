// Loads XGrammar's WebAssembly build (npm @mlc-ai/web-xgrammar). The package declares itself an ES
// module but ships a UMD bundle (it assigns to `exports`), which Node can load neither as ESM nor
// through require(); so the bundle is run as a CommonJS module body here. Its API is what the
// package's type declarations describe.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type XGrammar = typeof import('@mlc-ai/web-xgrammar');

let loaded: XGrammar | undefined;

export function loadXGrammar(): XGrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-xgrammar');
  const exports: Record<string, unknown> = {};
  const module = { exports };
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  const body = new AsyncFunction('exports', 'require', 'module', '__filename', '__dirname', readFileSync(file, 'utf8'));
  // The body only defines the API (the WebAssembly instance is created on first use), so it has
  // finished when the call returns.
  void body(exports, createRequire(file), module, file, dirname(file));
  loaded = module.exports as unknown as XGrammar;
  return loaded;
}
