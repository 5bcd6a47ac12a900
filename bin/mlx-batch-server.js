#!/usr/bin/env node
// Runs the TypeScript CLI (src/cli.ts) through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

// This process loads TypeScript through tsx's loader. The engine runs in a forked child process,
// which is started with this process's execArgv: adding tsx's loader there lets the child load
// TypeScript too. The loader is resolved from this package, so the command works from any
// working directory.
register();
process.execArgv.push('--import', import.meta.resolve('tsx'));

await import('../src/cli.ts');
