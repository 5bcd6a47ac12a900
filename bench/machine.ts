// A one-line description of the machine a benchmark ran on, for result files.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { mx } from '../src/engine/mlx.ts';

export function machineDescription(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const device = mx.defaultDevice().type === mx.gpu ? 'MLX Metal' : 'MLX CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, ${device}, Node ${process.version}`;
}

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** The CPU's vector instruction sets that matter to the kernels (from /proc/cpuinfo on Linux). */
export function cpuFlags(): string {
  try {
    const line =
      readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('flags')) ?? '';
    const have = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    const wanted = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'amx_tile'];
    return wanted.filter((f) => have.has(f)).join(' ') || 'none of avx2/avx512';
  } catch {
    return 'unknown';
  }
}
