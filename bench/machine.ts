// A one-line description of the machine a benchmark ran on, for result files.
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
