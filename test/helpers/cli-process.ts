// The mlx-batch-server executable as a child process, for tests of what only a real process
// shows: signals, exit codes, what it writes to stdout and stderr.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export const BIN = new URL('../../bin/mlx-batch-server.js', import.meta.url).pathname;

export interface CliProcess {
  child: ChildProcess;
  /** The OpenAI API's base URL as printed (…/v1). */
  api: string;
  /** The gRPC target as printed (host:port). */
  grpc: string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts the executable (with `nodeArgs` for node itself) and reads the addresses it prints. */
export async function launchCli(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<CliProcess> {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout! });
  const found: Record<string, string> = {};
  for await (const line of lines) {
    const api = /OpenAI API:\s+(\S+)/.exec(line);
    const grpc = /gRPC(?: target)?:\s+(\S+)/.exec(line);
    if (api) found.api = api[1];
    if (grpc) found.grpc = grpc[1];
    if (found.api && found.grpc) break;
  }
  assert.ok(found.api && found.grpc, `no addresses printed; stderr: ${stderr}`);
  return { child, api: found.api, grpc: found.grpc, stderr: () => stderr, exited };
}

/** Waits until GET /health answers 200 (the model is loaded). */
export async function waitForHealth(api: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(api.replace(/\/v1$/, '/health')).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('the server never became healthy');
}
