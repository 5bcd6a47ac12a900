// A one-line description of the machine a benchmark ran on, for result files.
import { readFileSync } from 'node:fs';
import { mx } from '../src/engine/mlx.ts';
import { machineDescription as clientMachineDescription } from './client/report.ts';

/**
 * The machine, not what computed the model: that is the benchmark's to say (the native kernels run
 * on the CPU whatever MLX's device is). `Metal GPU` when MLX would run on one.
 */
export function machineDescription(): string {
  const gpu = mx.defaultDevice().type === mx.gpu ? 'Metal GPU' : 'no GPU';
  return `${clientMachineDescription()}, ${gpu}`;
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
