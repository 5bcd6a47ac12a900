#!/usr/bin/env node
// Builds the CPU kernels addon (build/cpu-kernels.node) with the system C++ compiler: no
// node-gyp, no downloads (Node-API headers come from the node-api-headers package). kernels.cpp
// is compiled once per instruction set and the addon picks one at run time (cpu-features.cpp).
// Skips quietly where the addon is not used (not Linux), and rebuilds only when a source changed.
import { execFile, execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const here = import.meta.dirname;
const out = join(here, 'build');
const target = join(out, 'cpu-kernels.node');
const force = process.argv.includes('--force');

if (process.platform !== 'linux') {
  console.log('cpu-kernels: not built (the native CPU path is for Linux; MLX runs elsewhere)');
  process.exit(0);
}

const sources = readdirSync(here).filter((f) => /\.(cpp|h)$/.test(f));
const newest = Math.max(...sources.map((f) => statSync(join(here, f)).mtimeMs), statSync(import.meta.filename).mtimeMs);
if (!force && existsSync(target) && statSync(target).mtimeMs > newest) {
  process.exit(0);
}

const require = createRequire(import.meta.url);
const headers = join(dirname(require.resolve('node-api-headers/package.json')), 'include');
const cxx = process.env.CXX || 'c++';
const common = [
  '-std=gnu++17',
  '-O3',
  '-fPIC',
  '-pthread',
  '-fvisibility=hidden',
  '-fno-math-errno',
  '-ffp-contract=fast',
  '-DNODE_GYP_MODULE_NAME=cpu_kernels',
  `-I${headers}`,
  '-Wall',
  '-Wno-unused-function',
];
const isaFlags =
  process.arch === 'x64'
    ? {
        generic: [],
        avx2: ['-mavx2', '-mfma', '-mf16c'],
        avx512: ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mfma', '-mf16c'],
      }
    : { generic: [] };

mkdirSync(out, { recursive: true });
const jobs = [
  ...Object.entries(isaFlags).map(([isa, flags]) => ({
    src: 'kernels.cpp',
    obj: join(out, `kernels-${isa}.o`),
    flags: [`-DCK_ISA=${isa}`, ...flags],
  })),
  ...sources
    .filter((f) => f.endsWith('.cpp') && f !== 'kernels.cpp')
    .map((src) => ({ src, obj: join(out, src.replace(/\.cpp$/, '.o')), flags: [] })),
];
// Compile on every core at once.
const run = promisify(execFile);
const queue = [...jobs];
const failures = [];
await Promise.all(
  Array.from({ length: availableParallelism() }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      try {
        await run(cxx, [...common, ...job.flags, '-c', join(here, job.src), '-o', job.obj]);
      } catch (e) {
        failures.push(`${job.src}:\n${e.stderr || e.message}`);
      }
    }
  }),
);
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
execFileSync(cxx, ['-shared', '-pthread', '-o', target, ...jobs.map((j) => j.obj)], { stdio: 'inherit' });
console.log(`cpu-kernels: built ${target}`);
