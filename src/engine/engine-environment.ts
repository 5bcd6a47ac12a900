// The engine process's environment: BLAS threads for the machine's cores (or --threads), and
// MLX's kernel JIT compiling for this CPU (mlx-jit/g++ first on PATH). Only the engine process
// gets these; the server process needs none of it.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const JIT_WRAPPER_DIR = fileURLToPath(new URL('./mlx-jit', import.meta.url));

export function engineEnvironment(base: NodeJS.ProcessEnv, threads: number): NodeJS.ProcessEnv {
  const env = { ...base };
  env.OPENBLAS_NUM_THREADS ??= String(threads > 0 ? threads : availableParallelism());
  if (process.platform === 'linux') env.PATH = [JIT_WRAPPER_DIR, env.PATH ?? ''].join(':');
  return env;
}
